//go:build !linux

package h1

// canPeek: on this platform an idle connection keeps its buffers and an
// idle member connection is not checked before reuse.
const canPeek = false

func peek(fd uintptr, b []byte) bool { return true }

func rawRead(fd uintptr, p []byte) (int, error) { return 0, errWouldBlock }

func shutdownFD(fd uintptr) {}
