//go:build unix

package config

import (
	"io/fs"
	"syscall"
)

// The modes of access(2), the same on every Unix.
const (
	accessSearch = 1 // X_OK
	accessWrite  = 2 // W_OK
)

// mayCreateIn asks the kernel, with access(2), whether this process may
// create files in the directory dir: write and search permission, on a
// file system mounted read-write. It creates nothing. access(2) answers
// for the real user id, which is the effective one unless the binary is
// setuid.
func mayCreateIn(dir string) error {
	if err := syscall.Access(dir, accessWrite|accessSearch); err != nil {
		return &fs.PathError{Op: "access", Path: dir, Err: err}
	}
	return nil
}
