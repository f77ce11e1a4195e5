//go:build linux

package h1

import (
	"syscall"
	"unsafe"
)

// canPeek: this platform can wait for a connection to become readable
// without a read buffer, and check an idle connection without reading.
const canPeek = true

// peek reports whether the socket fd has data to read, or is at its end
// or failed: anything but "nothing yet". It neither waits nor consumes.
// b must not be empty.
func peek(fd uintptr, b []byte) (ready bool) {
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}
