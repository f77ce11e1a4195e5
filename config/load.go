package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes is the largest configuration file Load reads.
const MaxFileBytes = 1 << 20

// Error is one problem in a configuration file, printed "FILE:LINE: message".
type Error struct {
	File string
	Line int // 0 when the problem has no line (the file cannot be read)
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Errors is every problem found in a file, in file order. Its Error method
// puts one per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads, decodes and validates the file at path. On failure the error
// is an Errors listing every problem found.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, Errors{{File: path, Msg: err.Error()}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return Config{}, Errors{{File: path, Msg: err.Error()}}
	}
	if len(data) > MaxFileBytes {
		return Config{}, Errors{{File: path, Msg: fmt.Sprintf("file larger than %d bytes", MaxFileBytes)}}
	}
	return Parse(path, data)
}

// Parse decodes and validates data as the content of the file called name
// (used in error messages). Every problem found is reported at once: the
// decoding errors (unknown keys, values of the wrong type) with the
// validation errors of the rest, in line order.
func Parse(name string, data []byte) (Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, Errors{yamlError(name, err)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var out Errors
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, Errors{{File: name, Line: 1, Msg: "the file is empty: at least one balancer is required"}}
		}
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return Config{}, Errors{yamlError(name, err)}
		}
		out = decodeErrors(name, te)
		if !valuesOnly(te) {
			return Config{}, out
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, Errors{{File: name, Line: extra.Line, Msg: "only one YAML document is allowed"}}
	}
	if err := cfg.Validate(); err != nil {
		var fes FieldErrors
		if !errors.As(err, &fes) {
			return Config{}, append(out, &Error{File: name, Msg: err.Error()})
		}
		undecoded := map[int]bool{} // lines of values of the wrong type
		for _, e := range out {
			if !strings.HasPrefix(e.Msg, "unknown key ") {
				undecoded[e.Line] = true
			}
		}
		for _, fe := range fes {
			line, exact := lineOf(&root, fe.Field)
			if exact && undecoded[line] {
				continue // the value was not decoded: its default says nothing
			}
			out = append(out, &Error{File: name, Line: line, Msg: fe.Error()})
		}
	}
	if len(out) > 0 {
		slices.SortStableFunc(out, func(a, b *Error) int { return a.Line - b.Line })
		return Config{}, out
	}
	return cfg, nil
}

// AsFieldErrors returns the problems of err, a FieldErrors or a
// FieldError (wrapped or not), as FieldErrors; ok is false for any other
// error.
func AsFieldErrors(err error) (fes FieldErrors, ok bool) {
	var fe FieldError
	switch {
	case errors.As(err, &fes):
		return fes, true
	case errors.As(err, &fe):
		return FieldErrors{fe}, true
	}
	return nil, false
}

// Locate returns err, the problems that loading the configuration file
// at path for serving found beyond its text (in the files it names, in
// the environment), as Errors in line order: each FieldError of err (a
// FieldErrors, or a FieldError) at the line of its field, found in the
// file as it is now; one without a field (a problem of the environment),
// any other error, and every one if the file no longer parses, without a
// line. It returns nil for a nil err.
func Locate(path string, err error) Errors {
	if err == nil {
		return nil
	}
	fes, ok := AsFieldErrors(err)
	if !ok {
		return Errors{{File: path, Msg: err.Error()}}
	}
	var root yaml.Node
	if data, rerr := os.ReadFile(path); rerr == nil {
		if yaml.Unmarshal(data, &root) != nil {
			root = yaml.Node{}
		}
	}
	out := make(Errors, 0, len(fes))
	for _, fe := range fes {
		line := 0
		if root.Kind != 0 && fe.Field != "" {
			line, _ = lineOf(&root, fe.Field)
		}
		out = append(out, &Error{File: path, Line: line, Msg: fe.Error()})
	}
	slices.SortStableFunc(out, func(a, b *Error) int { return a.Line - b.Line })
	return out
}

// valuesOnly reports whether every error of te is about one value (an
// unknown key, a value of the wrong type): yaml.v3 leaves such a value at
// its default and decodes the rest, which is then worth validating. Any
// other error (a duplicate key) drops a whole mapping.
func valuesOnly(te *yaml.TypeError) bool {
	for _, s := range te.Errors {
		if !strings.Contains(s, " not found in type ") && !strings.Contains(s, "cannot unmarshal ") {
			return false
		}
	}
	return true
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func yamlError(name string, err error) *Error {
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: n, Msg: m[2]}
	}
	return &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

var (
	unknownRe  = regexp.MustCompile(`^field (\S+) not found in type (?:config\.)?(\S+)`)
	durationRe = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into time.Duration$")
	kindRe     = regexp.MustCompile(`^cannot unmarshal !!(\w+) into (?:\[\])?(?:\*?config\.)?(\S+)$`)
	typeRe     = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (?:\\[\\])?(?:\\*?config\\.)?(\\S+)$")
)

// decodeErrors turns yaml.v3's decoding errors into messages about the file.
func decodeErrors(name string, te *yaml.TypeError) Errors {
	out := make(Errors, 0, len(te.Errors))
	for _, s := range te.Errors {
		e := yamlError(name, errors.New(s))
		switch m := unknownRe.FindStringSubmatch(e.Msg); {
		case m != nil:
			e.Msg = fmt.Sprintf("unknown key %q in %s", m[1], strings.ToLower(m[2]))
		default:
			if m := durationRe.FindStringSubmatch(e.Msg); m != nil {
				e.Msg = fmt.Sprintf("%q is not a duration: write it with a unit, like \"5s\" or \"250ms\"", m[2])
			} else if m := typeRe.FindStringSubmatch(e.Msg); m != nil {
				e.Msg = fmt.Sprintf("%q is not a valid %s here", m[2], friendlyType(m[3]))
			} else if m := kindRe.FindStringSubmatch(e.Msg); m != nil {
				e.Msg = fmt.Sprintf("%s is not a valid %s here", friendlyKind(m[1]), friendlyType(m[2]))
			}
		}
		out = append(out, e)
	}
	return out
}

// friendlyKind names a YAML node kind.
func friendlyKind(k string) string {
	switch k {
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	return "a " + k
}

func friendlyType(t string) string {
	switch t {
	case "int", "int64":
		return "whole number"
	case "bool":
		return "boolean (true or false)"
	case "string":
		return "string"
	}
	return strings.ToLower(t) + " (a mapping of keys)"
}

// lineOf finds the line of field, a path such as "balancers[0].members[1].url",
// in the document, and reports whether the field is there. When the field
// itself is absent it returns the line of the nearest enclosing node that
// is present.
func lineOf(root *yaml.Node, field string) (line int, exact bool) {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line = n.Line
	for _, part := range splitPath(field) {
		next := child(n, part)
		if next == nil {
			return line, false
		}
		n, line = next, next.Line
	}
	return line, true
}

func splitPath(field string) []string {
	var parts []string
	for _, p := range strings.Split(field, ".") {
		for {
			i := strings.IndexByte(p, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				parts = append(parts, p[:i])
			}
			j := strings.IndexByte(p, ']')
			if j < i {
				break
			}
			parts = append(parts, p[i:j+1])
			p = p[j+1:]
		}
		if p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}

func child(n *yaml.Node, part string) *yaml.Node {
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == part {
			v := n.Content[i+1]
			if v.Kind == yaml.ScalarNode {
				return v
			}
			// A block value starts on the line after its key; point at the key.
			c := *v
			c.Line = n.Content[i].Line
			return &c
		}
	}
	return nil
}
