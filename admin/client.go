package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls a manager's API; `tether ctl` is built on it. It is safe
// for concurrent use.
type Client struct {
	base     *url.URL
	token    string
	operator string
	http     *http.Client
}

// ClientOptions configures a Client. Zero values mean the defaults given.
type ClientOptions struct {
	// Operator is sent as X-Tether-Operator and shown in the audit log
	// (tether ctl sends user@host). Default: none.
	Operator string
	// HTTP sends the requests. Default: a client with a 30s timeout that
	// follows no redirect.
	HTTP *http.Client
}

// Errors of the Client besides *APIError.
var (
	// ErrAmbiguous: a route names members of several balancers.
	ErrAmbiguous = errors.New("the route is in several balancers")
	// ErrDrainCancelled: the member left the draining state without being
	// drained (someone enabled it).
	ErrDrainCancelled = errors.New("the drain was cancelled")
	// ErrDrainCutShort: the member was stopped with live sessions left (the
	// drain deadline passed, or someone stopped it).
	ErrDrainCutShort = errors.New("the member was stopped before it was drained")
)

// APIError is an error answer of the manager.
type APIError struct {
	Status  int
	Message string
	// Field is the invalid field of the request, if the manager named one.
	Field string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("manager answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// NewClient returns a Client of the manager at base (like
// "http://127.0.0.1:8081") with token.
func NewClient(base, token string, o ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("manager URL %q: want http://HOST:PORT or https://HOST:PORT", base)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("manager URL %q: no user info, query or fragment", base)
	}
	if token == "" {
		return nil, errors.New("a token is required")
	}
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{
			Timeout:       30 * time.Second, // a manager answers in milliseconds
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Client{base: u, token: token, operator: o.Operator, http: hc}, nil
}

// URL returns the manager's base URL.
func (c *Client) URL() *url.URL { return c.base }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.operator != "" {
		req.Header.Set("X-Tether-Operator", c.operator)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Status: resp.StatusCode}
		var eb errorBody
		if json.Unmarshal(data, &eb) == nil {
			e.Message, e.Field = eb.Error, eb.Field
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("unexpected answer from %s: %v", c.base, err)
	}
	return nil
}

func memberPath(bal, rt string) string {
	return "/api/v1/balancers/" + url.PathEscape(bal) + "/members/" + url.PathEscape(rt)
}

// Balancers returns every balancer with its members.
func (c *Client) Balancers(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	err := c.do(ctx, http.MethodGet, "/api/v1/balancers", nil, &s)
	return s, err
}

// Member returns one member.
func (c *Client) Member(ctx context.Context, bal, rt string) (MemberView, error) {
	var v MemberView
	err := c.do(ctx, http.MethodGet, memberPath(bal, rt), nil, &v)
	return v, err
}

// Change changes a member's state and/or weight.
func (c *Client) Change(ctx context.Context, bal, rt string, ch MemberChange) (ChangeResult, error) {
	var res ChangeResult
	err := c.do(ctx, http.MethodPatch, memberPath(bal, rt), ch, &res)
	return res, err
}

// Add adds a member to balancer bal.
func (c *Client) Add(ctx context.Context, bal string, m NewMember) (ChangeResult, error) {
	var res ChangeResult
	err := c.do(ctx, http.MethodPost, "/api/v1/balancers/"+url.PathEscape(bal)+"/members", m, &res)
	return res, err
}

// Remove removes a member; without force the manager refuses to remove a
// member that still takes traffic.
func (c *Client) Remove(ctx context.Context, bal, rt string, force bool, reason string) (ChangeResult, error) {
	q := url.Values{}
	if force {
		q.Set("force", "true")
	}
	if reason != "" {
		q.Set("reason", reason)
	}
	path := memberPath(bal, rt)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var res ChangeResult
	err := c.do(ctx, http.MethodDelete, path, nil, &res)
	return res, err
}

// Audit returns up to limit audit entries with an id above after, oldest first.
func (c *Client) Audit(ctx context.Context, after uint64, limit int) ([]AuditEntry, error) {
	var p AuditPage
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	err := c.do(ctx, http.MethodGet, "/api/v1/audit?"+q.Encode(), nil, &p)
	return p.Entries, err
}

// Group returns the group as the manager's instance sees it; a 404
// *APIError when the instance is in no group.
func (c *Client) Group(ctx context.Context) (GroupView, error) {
	var v GroupView
	err := c.do(ctx, http.MethodGet, "/api/v1/group", nil, &v)
	return v, err
}

// Locate returns the balancer holding member rt: bal if given (checking
// it exists), else the one balancer with such a member. It fails with
// ErrAmbiguous when several have one, and with a 404 *APIError when none.
func (c *Client) Locate(ctx context.Context, rt, bal string) (string, error) {
	s, err := c.Balancers(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, b := range s.Balancers {
		if bal != "" && b.Name != bal {
			continue
		}
		for _, m := range b.Members {
			if m.Route == rt {
				found = append(found, b.Name)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return "", fmt.Errorf("%w: %q is in %s: say which with --balancer", ErrAmbiguous, rt, strings.Join(found, ", "))
	case bal != "":
		return "", &APIError{Status: http.StatusNotFound, Message: fmt.Sprintf("no member %q in balancer %q", rt, bal)}
	}
	return "", &APIError{Status: http.StatusNotFound, Message: fmt.Sprintf("no member %q in any balancer", rt)}
}

// WaitDrained polls member rt every interval until it is drained: draining
// with no live session left (in a group: the counts of every reachable
// instance in), or stopped by drain.done with none left. It
// calls progress (if not nil) with every reading. It fails with
// ErrDrainCancelled or ErrDrainCutShort if the drain ends otherwise, and
// with ctx's error (and the last reading) when ctx ends first.
func (c *Client) WaitDrained(ctx context.Context, bal, rt string, interval time.Duration, progress func(MemberView)) (MemberView, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last MemberView
	for {
		v, err := c.Member(ctx, bal, rt)
		if err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, err
		}
		last = v
		if progress != nil {
			progress(v)
		}
		switch {
		case v.State == "draining" && v.Drain != nil && v.Drain.Remaining == 0 && !v.Drain.Partial:
			return v, nil
		case v.State == "stopped" && v.LiveSessions == 0:
			return v, nil
		case v.State == "stopped":
			return v, fmt.Errorf("%w: %d live sessions left", ErrDrainCutShort, v.LiveSessions)
		case v.State != "draining":
			return v, fmt.Errorf("%w: %s is %s", ErrDrainCancelled, rt, v.State)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-t.C:
		}
	}
}
