package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tetherlb/tether/internal/freeport"
)

// cluster is cart nodes replicating sessions on loopback.
type cluster struct {
	dir   string
	nodes []*cartNode
}

type cartNode struct {
	name   string
	url    string // http://host:port
	cmd    *exec.Cmd
	out    *os.File
	done   chan error
	exited bool // done has been read
}

// startCluster starts nodes nodes, n1, n2, …, in mode, with a random
// cluster key, and waits until each answers 200 on /healthz.
func startCluster(bin, mode string, nodes int, lease string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "tether-bench-replication-run-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		return nil, err
	}
	var https, clusters []string
	for range nodes {
		h, err := freeport.Pick("127.0.0.1")
		if err != nil {
			return nil, err
		}
		cl, err := freeport.Pick("127.0.0.1")
		if err != nil {
			return nil, err
		}
		https, clusters = append(https, h), append(clusters, cl)
	}
	for i := range nodes {
		n := &cartNode{name: fmt.Sprintf("n%d", i+1), url: "http://" + https[i], done: make(chan error, 1)}
		log, err := os.Create(filepath.Join(dir, n.name+".log"))
		if err != nil {
			c.stop()
			return nil, err
		}
		n.out = log
		args := []string{"cart", "--listen", https[i], "--route", n.name, "--cluster", clusters[i],
			"--peers", strings.Join(clusters, ","), "--replication", mode, "--cluster-key-file", keyFile,
			"--drain-grace", "0"}
		if lease != "" {
			args = append(args, "--lease", lease)
		}
		n.cmd = exec.Command(bin, args...)
		n.cmd.Stdout, n.cmd.Stderr = log, log
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := n.cmd.Start(); err != nil {
			c.stop()
			return nil, err
		}
		go func() { n.done <- n.cmd.Wait() }()
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		if err := waitHealthy(n); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// waitHealthy polls n's /healthz until it answers 200, for a minute.
func waitHealthy(n *cartNode) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get(n.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-n.done:
			n.exited = true
			b, _ := os.ReadFile(n.out.Name())
			return fmt.Errorf("%s exited: %v\n%s", n.name, err, b)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after a minute", n.name)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// stop stops the nodes with SIGTERM (a clean handover) and removes the
// working directory. It may be called more than once.
func (c *cluster) stop() error {
	var errs []error
	for _, n := range c.nodes {
		if n.exited {
			n.out.Close()
			continue
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-n.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
			}
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			errs = append(errs, fmt.Errorf("%s did not stop within 30s", n.name))
			<-n.done
		}
		n.out.Close()
	}
	c.nodes = nil
	if c.dir != "" {
		os.RemoveAll(c.dir)
		c.dir = ""
	}
	return errors.Join(errs...)
}
