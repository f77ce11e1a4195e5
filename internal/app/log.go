package app

import (
	"io"
	"log/slog"

	"github.com/tetherlb/tether/config"
)

// NewLogger returns the server log c describes (its format and level),
// writing to w, and the level it logs at, for a reload to change
// (SetLogLevel). c is assumed valid (config.Validate).
func NewLogger(w io.Writer, c config.Log) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	SetLogLevel(level, c)
	o := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o)), level
	}
	return slog.New(slog.NewTextHandler(w, o)), level
}

// SetLogLevel sets level to c's: debug, info (also for ""), warn or error.
func SetLogLevel(level *slog.LevelVar, c config.Log) {
	l := slog.LevelInfo
	switch c.Level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	level.Set(l)
}
