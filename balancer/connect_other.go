//go:build !linux

package balancer

import (
	"context"
	"syscall"
)

// connectNow is nil here: net dials members as it does by default (see
// connect_linux.go).
var connectNow func(ctx context.Context, network, address string, c syscall.RawConn) error
