package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/tetherlb/tether/config"
)

// The audit file keeps every audit entry for good: one JSON object per
// line, the entry as the API returns it, appended and synced before the
// change is reported. At start the manager reads it back, so the API and
// the UI show the latest entries of earlier runs and ids go on from the
// last one. The file is only ever appended to: a line that cannot be read
// (a write cut short by a crash) is skipped and left where it is, and the
// next entry starts on a line of its own. Rotate it as any log, with
// copytruncate or by moving it and restarting.

// auditFile appends entries to the file. Its methods are safe for
// concurrent use.
type auditFile struct {
	path string

	mu sync.Mutex
	f  *os.File
}

// maxAuditLine bounds one line of the file when it is read back: more
// than an entry can take (a request body, and so a reason, is at most
// maxBodyBytes).
const maxAuditLine = 1 << 20

// openAuditFile opens (or creates, mode 0600) the audit file at path for
// appending and returns the last keep entries it holds, oldest first.
// Lines that are not entries are skipped (CheckAuditFile counts them).
func openAuditFile(path string, keep int) (*auditFile, []AuditEntry, error) {
	f, err := openAudit(path, true)
	if err != nil {
		return nil, nil, err
	}
	entries, _, endsLine, err := readAudit(f, keep)
	if err == nil && !endsLine {
		_, err = f.Write([]byte{'\n'}) // after a cut-off line
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("audit file %s: %w", path, err)
	}
	return &auditFile{path: path, f: f}, entries, nil
}

// CheckAuditFile checks the audit file at path as New opens and reads it
// (openAudit, readAudit), and creates and writes nothing: an existing
// file is opened for reading and appending and read through; a missing
// one must be one New can create (config.CanCreateIn). It returns the
// error New would, or nil, and how many lines of the file are not
// entries: New skips them and leaves them in the file, without a word,
// so that the caller warns about them once (tether serve logs the
// warning at start, tether check prints it).
func CheckAuditFile(path string) (skipped int, err error) {
	f, err := openAudit(path, false)
	if f == nil || err != nil {
		return 0, err
	}
	defer f.Close()
	_, skipped, _, err = readAudit(f, 1)
	if err != nil {
		return 0, fmt.Errorf("audit file %s: %w", path, err)
	}
	return skipped, nil
}

// openAudit opens the audit file at path as the manager uses it: a
// regular file (a pipe or a device could block or never end when it is
// read back at start), opened for reading and appending. A missing file
// is created (mode 0600) if create is set; else openAudit returns nil and
// no error if it could be created, an error if not.
func openAudit(path string, create bool) (*os.File, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !create:
		if err := config.CanCreateIn(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("audit file %s cannot be created: %w", path, err)
		}
		return nil, nil
	case err == nil && !st.Mode().IsRegular():
		return nil, fmt.Errorf("audit file %s is not a regular file: the manager reads it back at start", path)
	}
	flags := os.O_RDWR | os.O_APPEND
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	return f, nil
}

// readAudit reads the entries of r, keeping the last keep of them. It
// reports how many lines were not entries, and whether the data ends with
// a newline (or is empty).
func readAudit(r io.Reader, keep int) (entries []AuditEntry, bad int, endsLine bool, err error) {
	br := bufio.NewReaderSize(r, maxAuditLine)
	endsLine = true
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any entry: skip to its end.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			line = nil
			bad++
		}
		if len(line) > 0 {
			endsLine = line[len(line)-1] == '\n'
			if t := bytes.TrimSpace(line); len(t) > 0 {
				var e AuditEntry
				if json.Unmarshal(t, &e) != nil || e.ID == 0 {
					bad++
				} else {
					entries = append(entries, e)
					if len(entries) > 2*keep {
						entries = append(entries[:0], entries[len(entries)-keep:]...)
					}
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, false, err
		}
	}
	if len(entries) > keep {
		entries = entries[len(entries)-keep:]
	}
	return entries, bad, endsLine, nil
}

// write appends e as one line and syncs the file.
func (a *auditFile) write(e AuditEntry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return os.ErrClosed
	}
	if _, err := a.f.Write(append(data, '\n')); err != nil {
		return err
	}
	return a.f.Sync()
}

func (a *auditFile) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
