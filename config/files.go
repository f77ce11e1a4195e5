package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ReadSecret reads a secret (an AJP secret, a manager token) from file,
// or else from the environment variable env through getenv (os.Getenv if
// nil); both empty means none. White space around it is dropped, and an
// empty secret is an error: it would send or accept none.
func ReadSecret(file, env string, getenv func(string) string) (string, error) {
	switch {
	case file != "":
		b, err := readSecretFile(file)
		if err != nil {
			return "", err
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s is empty", file)
		}
		return s, nil
	case env != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		s := strings.TrimSpace(getenv(env))
		if s == "" {
			return "", fmt.Errorf("the environment variable %s is not set", env)
		}
		return s, nil
	}
	return "", nil
}

// MaxSecretBytes is the largest secret file (a token, an AJP secret,
// cookie keys) read.
const MaxSecretBytes = 64 << 10

// readSecretFile reads a file holding secrets: a regular file (not a
// pipe or a device, which could block or never end) of at most
// MaxSecretBytes.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSecretBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a secret", path, MaxSecretBytes)
	}
	return b, nil
}

// secretFile checks that a secret file holds a secret.
func (v *checker) secretFile(field, path string) {
	if _, err := ReadSecret(path, "", nil); err != nil {
		v.add(field, "%v", err)
	}
}

// keyPair checks that a certificate and key load as a pair, once both
// files are known to exist.
func (v *checker) keyPair(field, cert, key string) {
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		v.add(field, "%v", err)
	}
}

// CanCreateIn returns nil if this process can create a file in the
// directory dir (a log, a state file written whole and renamed), without
// creating one: dir exists, is a directory, and on Unix access(2) grants
// write and search permission there, on a file system mounted read-write.
// Else its error says why.
func CanCreateIn(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return mayCreateIn(dir)
}

// appendable checks that the file at path can be opened for appending,
// as serve opens a log: an existing file is opened (and closed again);
// a new one must be one this process can create (CanCreateIn). Nothing
// is created.
func (v *checker) appendable(field, path string) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := CanCreateIn(filepath.Dir(path)); err != nil {
			v.add(field, "%q cannot be created: %v", path, err)
		}
	case err != nil:
		v.add(field, "%v", err)
	case st.IsDir():
		v.add(field, "%q is a directory: name a file", path)
	case !st.Mode().IsRegular():
		// A device (/dev/stdout) or a pipe: opening a pipe would wait
		// for a reader, so it is taken as it is.
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			v.add(field, "%v", err)
			return
		}
		f.Close()
	}
}
