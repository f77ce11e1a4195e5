package browsertest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// The waiting helpers. A page updates itself (fetches, live feeds), so a
// test asks until the page is as it expects, up to Patience, and fails
// the test if it never is.

// Patience is how long the waiting helpers ask before they fail.
const Patience = 20 * time.Second

// ClickWhenReady clicks the first element matching css once there is one.
func (b *Browser) ClickWhenReady(t testing.TB, css string) {
	t.Helper()
	proctest.Eventually(t, Patience, func() error {
		el, err := b.Find(css)
		if err != nil {
			return err
		}
		return el.Click()
	})
}

// WaitText waits until the first element matching css shows want in its
// text.
func (b *Browser) WaitText(t testing.TB, css, want string) {
	t.Helper()
	proctest.Eventually(t, Patience, func() error {
		el, err := b.Find(css)
		if err != nil {
			return err
		}
		got, err := el.Text()
		if err != nil {
			return err
		}
		if !strings.Contains(got, want) {
			return fmt.Errorf("%s shows %q, want %q", css, got, want)
		}
		return nil
	})
}

// TextOf returns the text of the first element matching css, once there
// is one.
func (b *Browser) TextOf(t testing.TB, css string) string {
	t.Helper()
	var s string
	proctest.Eventually(t, Patience, func() error {
		el, err := b.Find(css)
		if err != nil {
			return err
		}
		s, err = el.Text()
		return err
	})
	return s
}
