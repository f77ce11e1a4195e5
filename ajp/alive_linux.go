//go:build linux

package ajp

import (
	"syscall"
	"unsafe"
)

// alive reports whether an idle connection is still open: nothing to read
// yet (the container sends nothing unasked, so anything readable is its
// end or garbage). It neither waits nor consumes.
func alive(cc *clientConn) bool {
	if cc.rc == nil {
		sc, ok := cc.nc.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		cc.rc = rc
	}
	ready := true
	var b [1]byte
	err := cc.rc.Control(func(fd uintptr) {
		for {
			_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if errno == syscall.EINTR {
				continue
			}
			ready = errno != syscall.EAGAIN
			return
		}
	})
	return err == nil && !ready
}
