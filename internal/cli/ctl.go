package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tetherlb/tether/admin"
)

// Exit codes of tether ctl besides ExitOK, ExitFailure and ExitUsage, so
// that scripts can tell what went wrong:
//
//	0  done (drain --wait: the member is drained)
//	1  the command ran and failed: the manager refused a change that
//	   conflicts with the member's state, drain --wait ended without the
//	   member drained (timeout, drain cancelled or cut short), a server error
//	2  usage: bad flags or arguments, a value the manager refused as
//	   invalid, a route found in several balancers (give --balancer)
//	3  the manager could not be reached
//	4  refused: no token, a wrong token, or the read-only token for a change
//	5  no such balancer or member
const (
	ExitUnreachable = 3
	ExitDenied      = 4
	ExitNotFound    = 5
)

const ctlUsage = `[--manager URL] [--token T | --token-file F] [--balancer NAME] COMMAND [ARGS]

commands:
  status                          the members of every balancer (--json: the API's JSON)
  drain ROUTE [--wait] [--timeout D] [--interval D]
                                  take no new sessions; with --wait, show the sessions
                                  left and exit 0 once none is left
  stop ROUTE                      take no traffic at all
  enable ROUTE                    take new sessions again (state active)
  standby ROUTE                   take new sessions only when no active member can
  weight ROUTE N                  set the share of new sessions (1 to 1000)
  add ROUTE URL [--weight N] [--state S] [--max-conns N]
                                  add an http(s) member (give --balancer if there are
                                  several); ajp:// members are set in the file
  remove ROUTE [--force]          remove a stopped or drained member (--force: any)
  audit [--limit N]               the latest changes, oldest first
  group                           the instances of this instance's group, as it sees them

Every change takes --reason TEXT, kept in the audit log.
The manager URL and token also come from TETHER_MANAGER_URL and TETHER_MANAGER_TOKEN.
Exit codes: 0 done, 1 failed (drain not finished, change refused), 2 usage or invalid value,
3 manager unreachable, 4 token refused, 5 no such balancer or member.`

// ctl is one run of tether ctl.
type ctl struct {
	env      Env
	client   *admin.Client
	balancer string
	json     bool
}

func runCtl(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "ctl", ctlUsage)
	manager := fs.String("manager", "", "manager URL (default $TETHER_MANAGER_URL, else http://127.0.0.1:8081)")
	token := fs.String("token", "", "manager token (default $TETHER_MANAGER_TOKEN); visible to other users in ps: prefer the variable or --token-file")
	tokenFile := fs.String("token-file", "", "file holding the manager token")
	bal := fs.String("balancer", "", "the balancer of ROUTE, when several balancers have a member of that name")
	operator := fs.String("operator", "", "your name in the audit log (default user@host)")
	asJSON := fs.Bool("json", false, "print the API's JSON instead of text")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return ExitUsage
	}
	c := &ctl{env: env, balancer: *bal, json: *asJSON}
	if code := c.connect(*manager, *token, *tokenFile, *operator); code >= 0 {
		return code
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "status":
		return c.status(ctx, rest)
	case "drain":
		return c.drain(ctx, rest)
	case "stop", "enable", "standby":
		return c.setState(ctx, cmd, rest)
	case "weight":
		return c.weight(ctx, rest)
	case "add":
		return c.add(ctx, rest)
	case "remove":
		return c.remove(ctx, rest)
	case "audit":
		return c.audit(ctx, rest)
	case "group":
		return c.group(ctx, rest)
	}
	fmt.Fprintf(env.Stderr, "tether ctl: unknown command %q\n", cmd)
	fs.Usage()
	return ExitUsage
}

// connect builds the client from the flags and the environment.
func (c *ctl) connect(manager, token, tokenFile, operator string) int {
	if manager == "" {
		manager = c.env.getenv("TETHER_MANAGER_URL")
	}
	if manager == "" {
		manager = "http://127.0.0.1:8081"
	}
	if token != "" && tokenFile != "" {
		return c.usage("give --token or --token-file, not both")
	}
	if tokenFile != "" {
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return c.usage(err.Error())
		}
		token = strings.TrimSpace(string(data))
	}
	if token == "" {
		token = strings.TrimSpace(c.env.getenv("TETHER_MANAGER_TOKEN"))
	}
	if token == "" {
		return c.usage("no token: set TETHER_MANAGER_TOKEN, or give --token-file or --token")
	}
	if operator == "" {
		operator = defaultOperator(c.env)
	}
	client, err := admin.NewClient(manager, token, admin.ClientOptions{Operator: operator})
	if err != nil {
		return c.usage(err.Error())
	}
	if u := client.URL(); u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		fmt.Fprintf(c.env.Stderr, "tether ctl: warning: the token goes unencrypted to %s; put the manager behind TLS\n", u.Host)
	}
	c.client = client
	return -1
}

func defaultOperator(env Env) string {
	name := env.getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	host, _ := os.Hostname()
	op := name + "@" + host
	if strings.ContainsFunc(op, func(r rune) bool { return r < ' ' || r == 0x7f }) || len(op) > 128 {
		return ""
	}
	return strings.Trim(op, "@")
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *ctl) usage(msg string) int {
	fmt.Fprintln(c.env.Stderr, "tether ctl:", msg)
	return ExitUsage
}

// fail prints err and returns the exit code it maps to.
func (c *ctl) fail(err error) int {
	fmt.Fprintln(c.env.Stderr, "tether ctl:", err)
	return exitCodeOf(err)
}

// exitCodeOf maps an error to the documented exit codes.
func exitCodeOf(err error) int {
	var ae *admin.APIError
	switch {
	case errors.As(err, &ae):
		switch {
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			return ExitDenied
		case ae.Status == http.StatusNotFound:
			return ExitNotFound
		case ae.Status == http.StatusBadRequest || ae.Status == http.StatusUnsupportedMediaType:
			return ExitUsage
		}
		return ExitFailure
	case errors.Is(err, admin.ErrAmbiguous):
		return ExitUsage
	case errors.Is(err, admin.ErrDrainCancelled), errors.Is(err, admin.ErrDrainCutShort),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ExitFailure
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return ExitUnreachable
	}
	return ExitFailure
}

// subFlags parses a command's flags, which may come before, between or
// after its arguments, and checks the number of arguments.
func (c *ctl) subFlags(fs *flag.FlagSet, args []string, want int) ([]string, int) {
	fs.SetOutput(c.env.Stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, ExitOK
			}
			return nil, ExitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != want {
		fs.Usage()
		return nil, ExitUsage
	}
	return pos, -1
}

func (c *ctl) newSub(name, args string) (*flag.FlagSet, *string) {
	fs := newFlags(c.env, "ctl "+name, args)
	reason := fs.String("reason", "", "why, for the audit log")
	return fs, reason
}

// change locates rt's balancer and applies ch, printing the result.
func (c *ctl) change(ctx context.Context, rt string, ch admin.MemberChange) int {
	bal, err := c.client.Locate(ctx, rt, c.balancer)
	if err != nil {
		return c.fail(err)
	}
	res, err := c.client.Change(ctx, bal, rt, ch)
	if err != nil {
		return c.fail(err)
	}
	c.printChange(res)
	return ExitOK
}

func (c *ctl) printChange(res admin.ChangeResult) {
	if c.json {
		c.printJSON(res)
		return
	}
	e := res.Audit
	fmt.Fprintf(c.env.Stdout, "%s/%s: %s\n", e.Balancer, e.Member, e.Summary())
}

func (c *ctl) printJSON(v any) {
	enc := json.NewEncoder(c.env.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (c *ctl) setState(ctx context.Context, cmd string, args []string) int {
	fs, reason := c.newSub(cmd, "ROUTE [--reason TEXT]")
	pos, code := c.subFlags(fs, args, 1)
	if code >= 0 {
		return code
	}
	state := map[string]string{"stop": "stopped", "enable": "active", "standby": "standby"}[cmd]
	return c.change(ctx, pos[0], admin.MemberChange{State: &state, Reason: *reason})
}

func (c *ctl) weight(ctx context.Context, args []string) int {
	fs, reason := c.newSub("weight", "ROUTE N [--reason TEXT]")
	pos, code := c.subFlags(fs, args, 2)
	if code >= 0 {
		return code
	}
	w, err := strconv.Atoi(pos[1])
	if err != nil {
		return c.usage(fmt.Sprintf("weight %q is not a number", pos[1]))
	}
	return c.change(ctx, pos[0], admin.MemberChange{Weight: &w, Reason: *reason})
}

func (c *ctl) add(ctx context.Context, args []string) int {
	fs, reason := c.newSub("add", "ROUTE URL [--weight N] [--state S] [--max-conns N] [--reason TEXT]")
	weight := fs.Int("weight", 1, "share of new sessions, 1 to 1000")
	maxConns := fs.Int("max-conns", 0, "the member's own limit of requests at once (0: the balancer's max_conns)")
	state := fs.String("state", "active", "active, draining, stopped or standby")
	pos, code := c.subFlags(fs, args, 2)
	if code >= 0 {
		return code
	}
	bal := c.balancer
	if bal == "" {
		s, err := c.client.Balancers(ctx)
		if err != nil {
			return c.fail(err)
		}
		if len(s.Balancers) != 1 {
			return c.usage("there are several balancers: say which with --balancer")
		}
		bal = s.Balancers[0].Name
	}
	res, err := c.client.Add(ctx, bal, admin.NewMember{
		MemberSpec: admin.MemberSpec{Route: pos[0], URL: pos[1], Weight: *weight, State: *state, MaxConns: *maxConns}, Reason: *reason,
	})
	if err != nil {
		return c.fail(err)
	}
	c.printChange(res)
	return ExitOK
}

func (c *ctl) remove(ctx context.Context, args []string) int {
	fs, reason := c.newSub("remove", "ROUTE [--force] [--reason TEXT]")
	force := fs.Bool("force", false, "remove the member even if it still takes traffic")
	pos, code := c.subFlags(fs, args, 1)
	if code >= 0 {
		return code
	}
	bal, err := c.client.Locate(ctx, pos[0], c.balancer)
	if err != nil {
		return c.fail(err)
	}
	res, err := c.client.Remove(ctx, bal, pos[0], *force, *reason)
	if err != nil {
		return c.fail(err)
	}
	c.printChange(res)
	return ExitOK
}

func (c *ctl) status(ctx context.Context, args []string) int {
	fs := newFlags(c.env, "ctl status", "")
	if _, code := c.subFlags(fs, args, 0); code >= 0 {
		return code
	}
	s, err := c.client.Balancers(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(s)
		return ExitOK
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BALANCER\tMEMBER\tSTATE\tHEALTH\tWEIGHT\tIN FLIGHT\tREQUESTS\tSESSIONS\tDRAIN")
	var down []string // why members are down, printed after the table
	for _, b := range s.Balancers {
		if c.balancer != "" && b.Name != c.balancer {
			continue
		}
		for _, m := range b.Members {
			state := m.State
			if m.Announced {
				state += " (announced)"
			}
			inFlight := strconv.FormatInt(m.InFlight, 10)
			if m.Queued > 0 {
				inFlight += fmt.Sprintf(" (+%d queued)", m.Queued)
			}
			health := m.Health
			if ss := m.SlowStart; ss != nil && m.Healthy {
				health += fmt.Sprintf(" (warming %d%%)", int(ss.Share*100))
			}
			if !m.Healthy && m.HealthReason != "" {
				down = append(down, fmt.Sprintf("%s/%s is down: %s", b.Name, m.Route, m.HealthReason))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", b.Name, m.Route, state, health, m.Weight,
				inFlight, m.Requests, m.LiveSessions, drainSummary(m, s.Time))
		}
	}
	tw.Flush()
	if len(down) > 0 {
		fmt.Fprintln(c.env.Stdout)
		for _, d := range down {
			fmt.Fprintln(c.env.Stdout, d)
		}
	}
	return ExitOK
}

// drainSummary describes a member's drain in a few words.
func drainSummary(m admin.MemberView, now time.Time) string {
	d := m.Drain
	if d == nil {
		if m.CreatedWhileDraining > 0 {
			return fmt.Sprintf("-  (%d sessions were created while draining)", m.CreatedWhileDraining)
		}
		return "-"
	}
	s := fmt.Sprintf("%d of %d left", d.Remaining, d.StartSessions)
	if d.Remaining == 0 {
		s = "drained"
	} else if d.EstimatedEmpty != nil {
		s += ", empty in ~" + roundDuration(d.EstimatedEmpty.Sub(now))
	} else if d.EmptyBy != nil {
		s += ", empty by " + d.EmptyBy.Local().Format("15:04:05")
	}
	if !d.Exact {
		s += " (at least: counting since " + d.CountingSince.Local().Format("15:04:05") + ")"
	}
	if m.CreatedWhileDraining > 0 {
		s += fmt.Sprintf(", %d created while draining", m.CreatedWhileDraining)
	}
	return s
}

func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(10 * time.Minute).String()
}

func (c *ctl) drain(ctx context.Context, args []string) int {
	fs, reason := c.newSub("drain", "ROUTE [--wait] [--timeout D] [--interval D] [--reason TEXT]")
	wait := fs.Bool("wait", false, "wait until no live session is left; exit 1 if --timeout passes first")
	timeout := fs.Duration("timeout", 0, "with --wait: give up after this long (default: wait as long as it takes)")
	interval := fs.Duration("interval", time.Second, "with --wait: how often to ask the manager")
	pos, code := c.subFlags(fs, args, 1)
	if code >= 0 {
		return code
	}
	if *interval <= 0 || *timeout < 0 {
		return c.usage("--interval must be positive and --timeout not negative")
	}
	rt := pos[0]
	bal, err := c.client.Locate(ctx, rt, c.balancer)
	if err != nil {
		return c.fail(err)
	}
	state := "draining"
	res, err := c.client.Change(ctx, bal, rt, admin.MemberChange{State: &state, Reason: *reason})
	if err != nil {
		return c.fail(err)
	}
	if !*wait {
		c.printChange(res)
		return ExitOK
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	p := newProgress(c.env.Stdout, bal+"/"+rt)
	v, err := c.client.WaitDrained(ctx, bal, rt, *interval, p.update)
	p.done()
	if errors.Is(err, context.DeadlineExceeded) {
		left := int64(-1)
		if v.Drain != nil {
			left = v.Drain.Remaining
		}
		fmt.Fprintf(c.env.Stderr, "tether ctl: %s/%s not drained after %v: %d sessions left\n", bal, rt, *timeout, left)
		return ExitFailure
	}
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.env.Stdout, "%s/%s drained (%s)\n", bal, rt, v.State)
	return ExitOK
}

func (c *ctl) audit(ctx context.Context, args []string) int {
	fs := newFlags(c.env, "ctl audit", "[--limit N]")
	limit := fs.Int("limit", 50, "how many entries, 1 to 1000")
	if _, code := c.subFlags(fs, args, 0); code >= 0 {
		return code
	}
	entries, err := c.client.Audit(ctx, 0, *limit)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(entries)
		return ExitOK
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tWHO\tMEMBER\tCHANGE\tREASON")
	for _, e := range entries {
		who := e.Actor
		if e.Operator != "" {
			who += " (" + e.Operator + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), who, e.Balancer, e.Member, e.Summary(), e.Reason)
	}
	tw.Flush()
	return ExitOK
}

// group prints the instances of the manager's group (exit 5 when the
// instance is in none).
func (c *ctl) group(ctx context.Context, args []string) int {
	fs := newFlags(c.env, "ctl group", "")
	if _, code := c.subFlags(fs, args, 0); code >= 0 {
		return code
	}
	g, err := c.client.Group(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(g)
		return ExitOK
	}
	sync := "not synced yet"
	if g.SyncedAt != nil {
		sync = "synced at " + g.SyncedAt.Local().Format(time.DateTime)
	}
	if g.Alone {
		sync += ", alone: no other instance reachable"
	}
	fmt.Fprintf(c.env.Stdout, "instance %s, %s\n", g.Instance, sync)
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tADDRESS\tHEALTH\tSINCE\tCOUNTS RECEIVED")
	for _, in := range g.Instances {
		name := in.Name
		if in.Self {
			name += " (this one)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, in.Addr, in.Health, stamp(in.Since), stamp(in.LastTallies))
	}
	tw.Flush()
	return ExitOK
}

// stamp formats t in local time, "-" when zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// progress shows how many sessions a drain has left: a bar redrawn in
// place on a terminal, a line per change otherwise.
type progress struct {
	w     io.Writer
	name  string
	tty   bool
	drawn bool
	last  string // what the last line said, without the estimate
}

func newProgress(w io.Writer, name string) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, name: name, tty: tty}
}

func (p *progress) update(m admin.MemberView) {
	d := m.Drain
	if d == nil {
		return
	}
	text := fmt.Sprintf("%d of %d sessions left", d.Remaining, d.StartSessions)
	if !d.Exact {
		text = "at least " + text
	}
	if m.CreatedWhileDraining > 0 {
		text += fmt.Sprintf(", %d created while draining", m.CreatedWhileDraining)
	}
	eta := ""
	if d.EstimatedEmpty != nil && d.Remaining > 0 {
		eta = ", empty in ~" + roundDuration(time.Until(*d.EstimatedEmpty))
	}
	if p.tty {
		const width = 30
		filled := min(max(int(d.Progress*width+0.5), 0), width)
		bar := strings.Repeat("#", filled) + strings.Repeat("-", width-filled)
		fmt.Fprintf(p.w, "\r\033[K%s [%s] %3.0f%%  %s%s", p.name, bar, d.Progress*100, text, eta)
		p.drawn = true
		return
	}
	if text != p.last {
		fmt.Fprintf(p.w, "%s: %s%s\n", p.name, text, eta)
		p.last = text
	}
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
