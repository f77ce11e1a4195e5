package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// itemsPerCart is how many items a client adds before it replaces its cart
// (a cart holds 100).
const itemsPerCart = 90

// shopper is one client with one cart on one node.
type shopper struct {
	client *http.Client
	node   string // base URL of the node the cart is created on
	sid    string // "<id>.<route>"
	items  int
	n      int
}

func newClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}}
}

// add adds one item and returns how long the request took, from sending to
// having read the whole response. A full cart is replaced first (untimed).
func (s *shopper) add() (time.Duration, error) {
	if s.items >= itemsPerCart {
		if err := s.logout(); err != nil {
			return 0, err
		}
	}
	s.n++
	body := fmt.Sprintf(`{"item":"item-%d"}`, s.n)
	req, _ := http.NewRequest(http.MethodPost, s.node+"/api/cart/items", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if s.sid != "" {
		req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: s.sid})
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST %s: %d %s", req.URL, resp.StatusCode, b)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			s.sid = c.Value
		}
	}
	s.items++
	return took, nil
}

// logout ends the cart, so that the next add starts a new one.
func (s *shopper) logout() error {
	req, _ := http.NewRequest(http.MethodPost, s.node+"/api/logout", nil)
	req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: s.sid})
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("logout: %d", resp.StatusCode)
	}
	s.sid, s.items = "", 0
	return nil
}

// writeLatency times samples adds by one client to a cart owned by n1.
func writeLatency(c *cluster, samples int) (summary, error) {
	s := &shopper{client: newClient(), node: c.nodes[0].url}
	if _, err := s.add(); err != nil { // the cart exists before timing starts
		return summary{}, err
	}
	var ds []time.Duration
	for range samples {
		d, err := s.add()
		if err != nil {
			return summary{}, err
		}
		if s.items > 1 { // the first add of a new cart also creates it: not an update
			ds = append(ds, d)
		}
	}
	return summarize(ds), nil
}

// readLatency times samples reads of a cart owned by n1, on n1, one
// after another (GET /api/cart: a read-only request). At the majority
// levels each read is confirmed: under the owner's lease, or by a round
// trip to a majority that renews it.
func readLatency(c *cluster, samples int) (summary, error) {
	s := &shopper{client: newClient(), node: c.nodes[0].url}
	if _, err := s.add(); err != nil {
		return summary{}, err
	}
	ds := make([]time.Duration, 0, samples)
	for range samples {
		req, _ := http.NewRequest(http.MethodGet, s.node+"/api/cart", nil)
		req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: s.sid})
		start := time.Now()
		resp, err := s.client.Do(req)
		if err != nil {
			return summary{}, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			return summary{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return summary{}, fmt.Errorf("GET %s: %d %s", req.URL, resp.StatusCode, b)
		}
		ds = append(ds, took)
	}
	return summarize(ds), nil
}

// visibility times, for samples adds to a cart owned by n1, how long until
// n2 shows the new version, polling it back to back: the change landed
// after the poll before the one that showed it was sent (low) and before
// that one's answer was read (visible).
func visibility(c *cluster, samples int) (visible, low, resolution summary, err error) {
	w := &shopper{client: newClient(), node: c.nodes[0].url}
	peer := &poller{client: newClient(), url: c.nodes[1].url}
	var vis, lows, res []time.Duration
	for len(vis) < samples {
		if w.items >= itemsPerCart || w.sid == "" {
			if w.sid != "" {
				if err := w.logout(); err != nil {
					return visible, low, resolution, err
				}
			}
			if _, err := w.add(); err != nil { // a new cart, created untimed
				return visible, low, resolution, err
			}
		}
		id, _, _ := strings.Cut(w.sid, ".")
		base, err := peer.waitVersion(id, 0, time.Time{}) // the peer has the cart as it is now
		if err != nil {
			return visible, low, resolution, err
		}
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := w.add(); done <- err }()
		p, err := peer.waitVersion(id, base.version+1, start)
		if werr := <-done; werr != nil {
			return visible, low, resolution, werr
		}
		if err != nil {
			return visible, low, resolution, err
		}
		vis, res = append(vis, p.seen.Sub(start)), append(res, p.seen.Sub(p.previous))
		lows = append(lows, max(0, p.previous.Sub(start)))
	}
	return summarize(vis), summarize(lows), summarize(res), nil
}

// poller reads a node's copy of a session.
type poller struct {
	client *http.Client
	url    string
}

// sighting is the poll that first showed a version.
type sighting struct {
	version  uint64
	seen     time.Time // when its answer was read
	previous time.Time // when the poll before it was sent (or the write, if it was the first)
}

// waitVersion polls id until its version is at least want (any version
// when want is 0), back to back, for at most 10 seconds.
func (p *poller) waitVersion(id string, want uint64, since time.Time) (sighting, error) {
	deadline := time.Now().Add(10 * time.Second)
	prev := since
	for {
		sent := time.Now()
		v, err := p.version(id)
		seen := time.Now()
		if err == nil && v >= want && v > 0 {
			if prev.IsZero() {
				prev = sent
			}
			return sighting{version: v, seen: seen, previous: prev}, nil
		}
		if err != nil && !errors.Is(err, errNoCopy) {
			return sighting{}, err
		}
		if seen.After(deadline) {
			return sighting{}, fmt.Errorf("%s: version %d of %.8s… not seen within 10s", p.url, want, id)
		}
		prev = sent
	}
}

var errNoCopy = errors.New("no copy yet")

func (p *poller) version(id string) (uint64, error) {
	resp, err := p.client.Get(p.url + "/cluster/sessions/" + id)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, resp.Body)
		return 0, errNoCopy
	}
	var c struct {
		Version uint64 `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/cluster/sessions: %d %v", p.url, resp.StatusCode, err)
	}
	return c.Version, nil
}

// throughput runs clients shoppers, spread over the nodes, adding items as
// fast as they are answered for d, and returns the writes per second, their
// latency and the number of failed writes.
func throughput(c *cluster, clients int, d time.Duration) (float64, summary, int, error) {
	var (
		mu     sync.Mutex
		all    []time.Duration
		failed atomic.Int64
		wg     sync.WaitGroup
		first  error
	)
	stop := time.Now().Add(d)
	client := newClient()
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &shopper{client: client, node: c.nodes[i%len(c.nodes)].url}
			var mine []time.Duration
			for time.Now().Before(stop) {
				took, err := s.add()
				if err != nil {
					if failed.Add(1) == 1 {
						mu.Lock()
						first = err
						mu.Unlock()
					}
					continue
				}
				mine = append(mine, took) // creations of new carts included: they are writes too
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failed.Load(); n > int64(len(all))/100 {
		return 0, summary{}, int(n), fmt.Errorf("%d writes failed, first: %v", n, first)
	}
	return float64(len(all)) / elapsed.Seconds(), summarize(all), int(failed.Load()), nil
}

// summary is a latency distribution.
type summary struct {
	n             int
	p50, p99, max time.Duration
}

func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return summary{n: len(s), p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
}
