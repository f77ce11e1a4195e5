//go:build linux

package h1

import (
	"io"
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

// rawRead reads the socket fd once without waiting: errWouldBlock when it
// is empty, io.EOF at its end.
func rawRead(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// shutdownFD ends both directions of the socket fd.
func shutdownFD(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RDWR) }
