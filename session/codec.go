package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
)

// Codec turns session values into bytes and back.
//
// Marshal must be deterministic: equal values give equal bytes, every time.
// The Manager depends on it to detect values changed in place (it re-encodes
// what a request read and compares) and a replicated store depends on it to
// send only what changed. Marshal must fail, not lose data, on values it
// cannot represent faithfully. A Codec must be safe for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default Codec: encoding/json, whose output is deterministic
// (map keys sorted, struct fields in declaration order) and which fails on
// channels, functions, complex numbers, NaN and infinities, and pointer
// cycles. Only exported struct fields are stored; a value with unexported
// state must implement json.Marshaler and json.Unmarshaler. Strings must be
// valid UTF-8 (encoding/json replaces invalid bytes with U+FFFD): keep binary
// data in []byte. Numbers decoded into interface{} values are json.Number, so
// that they re-encode exactly.
type JSON struct{}

// Marshal encodes v as JSON.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes data, one JSON value, into v.
func (JSON) Unmarshal(data []byte, v any) error {
	if !hasInterface(reflect.TypeOf(v), 0) {
		return json.Unmarshal(data, v) // rejects trailing data too
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("json: data after the value")
	}
	return nil
}

// hasInterface reports whether decoding into t may store a number in an
// interface value, where it needs json.Number to stay exact. Types nested
// deeper than 8 levels are assumed to.
func hasInterface(t reflect.Type, depth int) bool {
	if t == nil || depth > 8 {
		return true
	}
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return hasInterface(t.Elem(), depth+1)
	case reflect.Map:
		return hasInterface(t.Elem(), depth+1)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if hasInterface(t.Field(i).Type, depth+1) {
				return true
			}
		}
	}
	return false
}
