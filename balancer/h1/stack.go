package h1

// A goroutine starts with a 2 KiB stack, and the runtime grows it by
// copying it whole to one twice as large whenever a call runs out of
// room, walking every frame on it to adjust its pointers. Serving a
// connection's first request through the balancer (a member dialed, a
// response read, the connection closed) takes 8 KiB, and a TLS handshake
// 16 KiB: two or three copies, each made from 20 to 30 frames deep, where
// copying costs most. In a burst of new connections that was 10% of the
// proxy's CPU (docs/benchmarks.md, "The 1,000-connection tail, request by
// request; goroutine stacks grown once").
//
// growStack grows the stack once, to the size the connection will need,
// at the goroutine's start, where it is a few frames deep and the copy
// is cheap: its frame does not fit in the smaller size once the runtime's
// guard is counted, so the runtime allocates the larger one at once. A
// stack keeps its size until the goroutine ends (a collection may shrink
// one that uses a quarter of it), so the deeper calls find the room.

// growStack gives the calling goroutine a stack of at least 8 KiB; with
// tls, 16 KiB.
func growStack(tls bool) {
	if tls {
		growStack16K()
	} else {
		growStack8K()
	}
}

// growStack8K's frame (3 KiB, the runtime's 928-byte guard, and what the
// caller uses) does not fit in a 4 KiB stack: the runtime makes it 8 KiB.
//
//go:noinline
func growStack8K() {
	var frame [3 << 10]byte
	keepFrame(frame[:])
}

// growStack16K's frame (7 KiB) does not fit in 8 KiB: 16 KiB.
//
//go:noinline
func growStack16K() {
	var frame [7 << 10]byte
	keepFrame(frame[:])
}

// keepFrame is a call the compiler cannot see through, so that the array
// passed to it stays in its caller's frame.
//
//go:noinline
func keepFrame([]byte) {}
