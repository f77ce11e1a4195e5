package session_test

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/tetherlb/tether/session"
)

type cart struct {
	Items []string
	Notes map[string]string
}

type node struct {
	Name string
	Next *node
}

// TestPutErrors checks that what cannot be stored is refused at Put, with a
// clear error, and that nothing of it reaches the store.
func TestPutErrors(t *testing.T) {
	cyclic := &node{Name: "a"}
	cyclic.Next = cyclic
	tests := []struct {
		name  string
		key   string
		value any
		want  error
	}{
		{"channel", "k", make(chan int), session.ErrEncoding},
		{"function", "k", func() {}, session.ErrEncoding},
		{"cycle", "k", cyclic, session.ErrEncoding},
		{"NaN", "k", math.NaN(), session.ErrEncoding},
		{"complex", "k", complex(1, 2), session.ErrEncoding},
		{"map with channel inside", "k", map[string]any{"c": make(chan int)}, session.ErrEncoding},
		{"value over the cap", "k", strings.Repeat("x", 200), session.ErrTooLarge},
		{"session over the cap", "big", strings.Repeat("y", 90), session.ErrTooLarge},
		{"empty key", "", "v", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, session.Options{MaxValueBytes: 100, MaxSessionBytes: 150})
			var err error
			e.do(func(w http.ResponseWriter, r *http.Request) {
				s := session.From(r)
				if err := s.Put("small", strings.Repeat("z", 60)); err != nil {
					t.Fatal(err)
				}
				err = s.Put(tt.key, tt.value)
			}, "POST", "/")
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Put: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "session: ") {
				t.Fatalf("error %q does not say where it comes from", err)
			}
			if tt.key != "" && !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error %q does not name the key", err)
			}
		})
	}
}

// TestInPlaceMutation checks that values changed through what Get returned,
// or after Put, are saved without a second Put — unlike Tomcat, where only
// setAttribute marks a session dirty.
func TestInPlaceMutation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*session.Session) error
		want   string // the stored "cart" afterwards
	}{
		{"append through a pointer from Get", func(s *session.Session) error {
			c, err := session.Get[*cart](s, "cart")
			c.Items = append(c.Items, "pear")
			return err
		}, `{"Items":["apple","pear"],"Notes":{"gift":"yes"}}`},
		{"map entry set through a map from Get", func(s *session.Session) error {
			m, err := session.Get[map[string]any](s, "cart")
			m["Notes"] = map[string]string{"gift": "no"}
			return err
		}, `{"Items":["apple"],"Notes":{"gift":"no"}}`},
		{"change after Put", func(s *session.Session) error {
			c := &cart{Items: []string{"kiwi"}}
			err := s.Put("cart", c)
			c.Items[0] = "plum"
			return err
		}, `{"Items":["plum"],"Notes":null}`},
		{"Get after Put returns the same object", func(s *session.Session) error {
			if err := s.Put("cart", &cart{Items: []string{"fig"}}); err != nil {
				return err
			}
			c, err := session.Get[*cart](s, "cart")
			c.Items = append(c.Items, "date")
			return err
		}, `{"Items":["fig","date"],"Notes":null}`},
		{"a second Get returns the same object", func(s *session.Session) error {
			c1, _ := session.Get[*cart](s, "cart")
			c2, err := session.Get[*cart](s, "cart")
			c1.Items = append(c1.Items, "one")
			c2.Notes["two"] = "2"
			return err
		}, `{"Items":["apple","one"],"Notes":{"gift":"yes","two":"2"}}`},
		{"a struct copy changed is not the session's", func(s *session.Session) error {
			c, err := session.Get[cart](s, "cart")
			c.Items = append(c.Items, "lost")
			return err
		}, `{"Items":["apple"],"Notes":{"gift":"yes"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, session.Options{})
			c := sessionCookie(t, e.do(put(t, "cart", cart{Items: []string{"apple"}, Notes: map[string]string{"gift": "yes"}}), "POST", "/"))
			e.do(func(w http.ResponseWriter, r *http.Request) {
				if err := tt.mutate(session.From(r)); err != nil {
					t.Fatal(err)
				}
			}, "POST", "/", c)
			rec, err := e.store.Load(t.Context(), idPart(c))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(rec.Values["cart"]); got != tt.want {
				t.Fatalf("stored %s\nwant   %s", got, tt.want)
			}
		})
	}
}

// TestReadOnlyRequestWritesNothing checks that reading values, even ones
// that could be changed in place, saves nothing when they were not.
func TestReadOnlyRequestWritesNothing(t *testing.T) {
	e := newEnv(t, session.Options{})
	c := sessionCookie(t, e.do(put(t, "cart", cart{Items: []string{"apple"}, Notes: map[string]string{"b": "2", "a": "1"}}), "POST", "/"))
	e.do(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		if _, err := session.Get[*cart](s, "cart"); err != nil {
			t.Fatal(err)
		}
		if _, err := session.Get[map[string]any](s, "cart"); err != nil {
			t.Fatal(err)
		}
	}, "GET", "/", c)
	if rec, _ := e.store.Load(t.Context(), idPart(c)); rec.Version != 1 {
		t.Fatalf("version %d after a read-only request, want 1", rec.Version)
	}
}

// TestValuesKeepExactNumbers checks that reading a large integer as an
// interface{} and committing does not round it through float64.
func TestValuesKeepExactNumbers(t *testing.T) {
	e := newEnv(t, session.Options{})
	c := sessionCookie(t, e.do(put(t, "n", map[string]uint64{"big": math.MaxUint64}), "POST", "/"))
	e.do(func(w http.ResponseWriter, r *http.Request) {
		m, err := session.Get[map[string]any](session.From(r), "n")
		if err != nil {
			t.Fatal(err)
		}
		m["other"] = 1
	}, "POST", "/", c)
	rec, _ := e.store.Load(t.Context(), idPart(c))
	if got := string(rec.Values["n"]); got != `{"big":18446744073709551615,"other":1}` {
		t.Fatalf("stored %s", got)
	}
}

func TestGetTyped(t *testing.T) {
	e := newEnv(t, session.Options{})
	c := sessionCookie(t, e.do(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		for k, v := range map[string]any{"n": 42, "s": "text", "list": []int{1, 2}} {
			if err := s.Put(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}, "POST", "/"))
	e.do(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		if n, err := session.Get[int](s, "n"); n != 42 || err != nil {
			t.Errorf("Get[int] = %v, %v", n, err)
		}
		if v, ok, err := session.Lookup[string](s, "missing"); v != "" || ok || err != nil {
			t.Errorf("Lookup of a missing key = %q, %v, %v", v, ok, err)
		}
		if _, err := session.Get[int](s, "s"); !errors.Is(err, session.ErrEncoding) {
			t.Errorf("Get[int] of a string: %v, want ErrEncoding", err)
		}
		if l, ok, err := session.Lookup[[]int](s, "list"); len(l) != 2 || !ok || err != nil {
			t.Errorf("Lookup[[]int] = %v, %v, %v", l, ok, err)
		}
		if err := s.Remove("n"); err != nil {
			t.Error(err)
		}
		if keys, err := s.Keys(); strings.Join(keys, ",") != "list,s" || err != nil {
			t.Errorf("Keys = %v, %v", keys, err)
		}
	}, "POST", "/", c)
	rec, _ := e.store.Load(t.Context(), idPart(c))
	if _, ok := rec.Values["n"]; ok || len(rec.Values) != 2 {
		t.Fatalf("stored %q after Remove", rec.Values)
	}
}

func TestJSONCodecDeterministic(t *testing.T) {
	var j session.JSON
	m := map[string]int{}
	for i := 0; i < 100; i++ {
		m[string(rune('a'+i%26))+string(rune('a'+i/26))] = i
	}
	first, err := j.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, _ := j.Marshal(m)
		if string(again) != string(first) {
			t.Fatal("two encodings of one map differ")
		}
	}
	var v any
	if err := j.Unmarshal([]byte(`{"a":1} {"b":2}`), &v); err == nil {
		t.Fatal("trailing data accepted")
	}
	if err := j.Unmarshal([]byte(`12345678901234567890`), &v); err != nil || v.(json.Number) != "12345678901234567890" {
		t.Fatalf("number decoded as %T %v, %v", v, v, err)
	}
}
