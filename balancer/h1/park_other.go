//go:build !linux

package h1

import "time"

// parker: on this platform idle connections keep their goroutines.
type parker struct{}

const canPark = false

func newParker(*Server) *parker                    { return nil }
func (p *parker) park(*ServerConn, time.Time) bool { return false }
func (p *parker) close()                           {}
func (p *parker) wait()                            {}
