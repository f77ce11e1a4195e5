package h1

import (
	"testing"
	"unsafe"
)

// TestGrowStack checks that after growStack a goroutine's calls can go
// as deep as it promises without the runtime moving the stack (the copy
// it would make to grow it), where a goroutine that did not call it has
// its stack moved by the same calls. A moved stack shows as a local
// variable's new address. It fails if the compiler ever drops the frame
// that makes the runtime grow the stack.
func TestGrowStack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tls   bool
		depth int // bytes of stack the calls after growStack take
	}{
		{"plain", false, 5 << 10},
		{"tls", true, 12 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if moved := stackMoves(func() { growStack(tc.tls) }, tc.depth); moved {
				t.Errorf("calls %d B deep moved the stack after growStack(%v)", tc.depth, tc.tls)
			}
			// The control: the same calls on a new goroutine's stack move it.
			if moved := stackMoves(func() {}, tc.depth); !moved {
				t.Errorf("calls %d B deep did not move a new goroutine's stack: the test cannot tell", tc.depth)
			}
		})
	}
}

// stackMoves reports whether calls depth bytes deep, made on a new
// goroutine after grow, moved its stack.
func stackMoves(grow func(), depth int) bool {
	moved := make(chan bool)
	go func() {
		var local byte
		grow()
		before := uintptr(unsafe.Pointer(&local))
		deepCalls(depth / 512)
		moved <- uintptr(unsafe.Pointer(&local)) != before
	}()
	return <-moved
}

// deepCalls makes n nested calls of a little over 512 bytes of stack each.
//
//go:noinline
func deepCalls(n int) {
	var frame [512]byte
	keepFrame(frame[:])
	if n > 1 {
		deepCalls(n - 1)
	}
}
