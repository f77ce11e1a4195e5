package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// ajpSecretEnv holds the AJP secret when --ajp-secret-file is not given.
const ajpSecretEnv = "TETHER_AJP_SECRET"

// cartAJP is the AJP connector of `tether cart`: --ajp and its secret.
type cartAJP struct {
	addr, secretFile *string
}

func addCartAJPFlags(fs *flag.FlagSet) cartAJP {
	return cartAJP{
		addr:       fs.String("ajp", "", "also serve the cart over AJP13 on this address, for Apache httpd mod_jk or mod_proxy_ajp (e.g. 127.0.0.1:8009)"),
		secretFile: fs.String("ajp-secret-file", "", "file holding the AJP secret the web server sends (default $"+ajpSecretEnv+"); required with --ajp"),
	}
}

// options returns --ajp and its secret (from --ajp-secret-file, else the
// environment), or the mistake in the flags.
func (a cartAJP) options(env Env) (addr, secret string, err error) {
	if *a.addr == "" {
		if *a.secretFile != "" {
			return "", "", errors.New("--ajp-secret-file needs --ajp")
		}
		return "", "", nil
	}
	secret = strings.TrimSpace(env.getenv(ajpSecretEnv))
	if *a.secretFile != "" {
		b, err := os.ReadFile(*a.secretFile)
		if err != nil {
			return "", "", fmt.Errorf("--ajp-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return "", "", fmt.Errorf("--ajp needs a secret: give --ajp-secret-file or set %s (the web server's worker secret)", ajpSecretEnv)
	}
	return *a.addr, secret, nil
}
