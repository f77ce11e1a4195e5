package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/proctest"
)

func TestNewLogger(t *testing.T) {
	tests := []struct {
		name     string
		c        config.Log
		json     bool
		debug    bool // a debug record is written
		info     bool // an info record is written
		warnings bool
	}{
		{"defaults: text at info", config.Log{}, false, false, true, true},
		{"json at debug", config.Log{Level: "debug", Format: "json"}, true, true, true, true},
		{"text at warn", config.Log{Level: "warn", Format: "text"}, false, false, false, true},
		{"json at error", config.Log{Level: "error", Format: "json"}, true, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, _ := NewLogger(&buf, tt.c)
			log.Debug("d", "k", 1)
			log.Info("i", "k", "two words")
			log.Warn("w")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			want := 0
			for _, on := range []bool{tt.debug, tt.info, tt.warnings} {
				if on {
					want++
				}
			}
			if len(lines) != want {
				t.Fatalf("%d records, want %d:\n%s", len(lines), want, buf.String())
			}
			for _, l := range lines {
				var rec map[string]any
				isJSON := json.Unmarshal([]byte(l), &rec) == nil
				if isJSON != tt.json {
					t.Errorf("JSON %v, want %v: %s", isJSON, tt.json, l)
				}
				if isJSON && (rec["msg"] == nil || rec["level"] == nil || rec["time"] == nil) {
					t.Errorf("a JSON record without time, level and msg: %s", l)
				}
			}
		})
	}
}

// TestSetLogLevel: a reload's new level applies to the logger NewLogger made.
func TestSetLogLevel(t *testing.T) {
	var buf bytes.Buffer
	log, level := NewLogger(&buf, config.Log{Level: "warn", Format: "json"})
	log.Info("before")
	SetLogLevel(level, config.Log{Level: "debug"})
	log.Debug("after")
	if got := buf.String(); strings.Contains(got, "before") || !strings.Contains(got, `"msg":"after"`) {
		t.Errorf("log after warn, then debug:\n%s", got)
	}
}

// TestReloadSetsLogLevel: a reload applies the file's new log.level to
// the running server log; a new format waits for a restart (and says so).
func TestReloadSetsLogLevel(t *testing.T) {
	backend := named(t, "n1")
	path := filepath.Join(t.TempDir(), "tether.yaml")
	write := func(log string) {
		must(t, os.WriteFile(path, []byte(fmt.Sprintf("listen: 127.0.0.1:0\nlog: %s\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n", log, backend.URL)), 0o600))
	}
	write("{level: warn, format: json}")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf proctest.Buffer
	logger, level := NewLogger(&buf, cfg.Log)
	reload := make(chan struct{})
	serveInTest(t, cfg, ServeOptions{ConfigPath: path, Reload: reload, Logger: logger, LogLevel: level})
	write("{level: info, format: text}")
	reload <- struct{}{}
	proctest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(buf.String(), `"msg":"configuration reloaded"`) {
			return fmt.Errorf("no info record after the reload to level info:\n%s", buf.String())
		}
		return nil
	})
	if !strings.Contains(buf.String(), "log.format takes effect at the next restart") {
		t.Errorf("no warning about the new format:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), `"msg":"listening"`) {
		t.Errorf("an info record written at level warn:\n%s", buf.String())
	}
}
