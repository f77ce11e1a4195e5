package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/tetherlb/tether/internal/app"
	"github.com/tetherlb/tether/session/redisstore"
)

// storePasswordEnv holds the password of --store when
// --store-password-file is not given.
const storePasswordEnv = app.StorePasswordEnv

// cartStoreFlags holds the flags of `tether cart` that put its sessions in
// a store shared by every node (docs/architecture.md, "Stable interfaces": --store).
type cartStoreFlags struct {
	url, passwordFile *string
}

func addCartStoreFlags(fs *flag.FlagSet) cartStoreFlags {
	return cartStoreFlags{
		url: fs.String("store", "memory", "where sessions live: memory (this node only), or a store every node shares: "+
			"redis://[USER@]HOST:PORT[/DB], rediss://…, redis-sentinel://HOST:PORT,…/MASTER, redis-cluster://HOST:PORT,…, memcached://HOST:PORT[,HOST:PORT…]"),
		passwordFile: fs.String("store-password-file", "", "file holding the password of --store (default $"+storePasswordEnv+"); keeps it out of the process list"),
	}
}

// options returns --store and the store's password (from
// --store-password-file, else the environment; surrounding white space is
// not part of it), or the mistake in the flags. clustered says whether
// --cluster was given.
func (f cartStoreFlags) options(env Env, clustered bool) (url, password string, err error) {
	if *f.url == "memory" {
		return "", "", nil
	}
	if clustered {
		return "", "", fmt.Errorf("--store %s and --cluster exclude each other: sessions live in one or the other", redisstore.Redact(*f.url))
	}
	if *f.passwordFile == "" {
		return *f.url, strings.TrimSpace(env.getenv(storePasswordEnv)), nil
	}
	b, err := os.ReadFile(*f.passwordFile)
	if err != nil {
		return "", "", fmt.Errorf("--store-password-file: %w", err)
	}
	p := strings.TrimSpace(string(b))
	if p == "" {
		return "", "", errors.New("--store-password-file " + *f.passwordFile + " is empty")
	}
	return *f.url, p, nil
}
