package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestAuditFile: every change is appended to the audit file as one JSON
// line; after a restart the API shows the earlier entries and ids go on;
// a line cut short (a crash mid-write) is skipped, kept, and does not
// swallow the next entry.
func TestAuditFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	e := newEnv(t, envConfig{opts: func(o *Options) { o.AuditFile = path }})
	if a := e.patch("n1", map[string]any{"state": "draining", "reason": "kernel update"}); a.status != 200 {
		t.Fatalf("PATCH: %d %s", a.status, a.body)
	}
	if a := e.patch("n2", map[string]any{"weight": 3}); a.status != 200 {
		t.Fatalf("PATCH: %d %s", a.status, a.body)
	}
	lines := fileEntries(t, path)
	if len(lines) != 2 || lines[0].ID != 1 || lines[0].Member != "n1" || lines[0].After.State != "draining" ||
		lines[0].Reason != "kernel update" || lines[0].Actor != "read-write token" ||
		lines[1].ID != 2 || lines[1].After.Weight != 3 {
		t.Fatalf("audit file entries: %+v", lines)
	}

	// A restart reads them back: the API has them, ids go on.
	e.restart(nil)
	if got := apiAudit(t, e); len(got) != 2 || got[0] != lines[0].ID || got[1] != lines[1].ID {
		t.Fatalf("after a restart the API lists ids %v, want 1 and 2", got)
	}
	e.patch("n3", map[string]any{"weight": 2})
	if got := apiAudit(t, e); len(got) != 3 || got[2] != 3 {
		t.Fatalf("ids %v, want 1 2 3", got)
	}

	// A write cut short by a crash.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":4,"time":"2026-`)
	f.Close()
	e.restart(nil)
	e.patch("n3", map[string]any{"weight": 4})
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte("{\"id\":4,\"time\":\"2026-\n")) {
		t.Errorf("the cut-off line is not kept as it was:\n%s", data)
	}
	lines = fileEntries(t, path)
	if n := len(lines); n != 4 || lines[3].ID != 4 || lines[3].After.Weight != 4 {
		t.Errorf("after the cut-off line: %+v", lines)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, %v; want 0600", info.Mode(), err)
	}
}

// TestCheckAuditFileAgreesWithNew: CheckAuditFile (tether check) refuses
// the audit files New (tether serve) refuses, with the same error, and
// accepts the others without creating or writing one, counting the lines
// that are not entries (New skips them). (Permissions,
// which never stop root, are in internal/cli's TestCheckLoadsWhatServeLoads.)
func TestCheckAuditFileAgreesWithNew(t *testing.T) {
	write := func(content string) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		make    func(t *testing.T, path string) // nil: no file
		want    string                          // "" for none
		skipped int                             // lines that are not entries
	}{
		{"new file", nil, "", 0},
		{"existing file", write(`{"id":1}` + "\n"), "", 0},
		{"lines that are not entries", write(`{"id":1}` + "\nnot json\n{}\n" + `{"id":2,"time":"2026-`), "", 3},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file", 0},
		{"named pipe, which would block the read at start", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file", 0},
		{"missing directory", nil, "no such file or directory", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.jsonl")
			if tt.name == "missing directory" {
				path = filepath.Join(dir, "missing-dir", "audit.jsonl")
			}
			if tt.make != nil {
				tt.make(t, path)
			}
			content := func() []byte { // a pipe is not read: that would block
				if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() {
					b, _ := os.ReadFile(path)
					return b
				}
				return nil
			}
			before := content()
			skipped, cerr := CheckAuditFile(path)
			after := content()
			if _, err := os.Lstat(path); (tt.make == nil) != errors.Is(err, fs.ErrNotExist) || !bytes.Equal(before, after) {
				t.Fatalf("CheckAuditFile created or changed the file (%v)", err)
			}
			m, nerr := New(Options{Source: &lazySource{}, Token: rwToken, AuditFile: path})
			if m != nil {
				m.Close()
			}
			if skipped != tt.skipped {
				t.Errorf("CheckAuditFile: %d lines skipped, want %d", skipped, tt.skipped)
			}
			if tt.want == "" {
				if cerr != nil || nerr != nil {
					t.Fatalf("CheckAuditFile: %v; New: %v; want both nil", cerr, nerr)
				}
				return
			}
			if cerr == nil || nerr == nil || !strings.Contains(cerr.Error(), tt.want) || !strings.Contains(nerr.Error(), tt.want) {
				t.Fatalf("CheckAuditFile: %v; New: %v; want both %q", cerr, nerr, tt.want)
			}
		})
	}
}

// fileEntries reads the entries of the audit file, skipping lines that
// are not JSON.
func fileEntries(t *testing.T, path string) []AuditEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []AuditEntry
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var e AuditEntry
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// apiAudit returns the ids the API lists.
func apiAudit(t *testing.T, e *env) []uint64 {
	t.Helper()
	var page AuditPage
	e.do(req{method: "GET", path: "/api/v1/audit", token: roToken}).decode(t, &page)
	var ids []uint64
	for _, en := range page.Entries {
		ids = append(ids, en.ID)
	}
	return ids
}

func TestReadAudit(t *testing.T) {
	entry := func(id int) string {
		return `{"id":` + string(rune('0'+id)) + `,"balancer":"b","action":"state"}` + "\n"
	}
	tests := []struct {
		name     string
		in       string
		keep     int
		ids      []uint64
		bad      int
		endsLine bool
	}{
		{"empty", "", 10, nil, 0, true},
		{"entries", entry(1) + entry(2), 10, []uint64{1, 2}, 0, true},
		{"the last kept", entry(1) + entry(2) + entry(3) + entry(4) + entry(5), 2, []uint64{4, 5}, 0, true},
		{"cut off at the end", entry(1) + `{"id":2,"bal`, 10, []uint64{1}, 1, false},
		{"garbage and blank lines", "not json\n\n" + entry(1) + "{}\n", 10, []uint64{1}, 2, true},
		{"a line longer than any entry", strings.Repeat("x", maxAuditLine+10) + "\n" + entry(3), 10, []uint64{3}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, endsLine, err := readAudit(strings.NewReader(tt.in), tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			if !slices.Equal(ids, tt.ids) || bad != tt.bad || endsLine != tt.endsLine {
				t.Errorf("ids %v, bad %d, ends a line %v; want %v, %d, %v", ids, bad, endsLine, tt.ids, tt.bad, tt.endsLine)
			}
		})
	}
}
