package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/tetherlb/tether/internal/importer"
)

// runImport prints the tether.yaml equivalent of an httpd or mod_jk
// configuration on stdout, and what has no equivalent on stderr as
// FILE:LINE: message.
func runImport(_ context.Context, env Env, args []string) int {
	fs := newFlags(env, "import", "httpd FILE | jk WORKERS.PROPERTIES [HTTPD.CONF|URIWORKERMAP.PROPERTIES ...]")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	rest := fs.Args()
	if len(rest) < 2 || (rest[0] == "httpd" && len(rest) != 2) || (rest[0] != "httpd" && rest[0] != "jk") {
		fs.Usage()
		return ExitUsage
	}
	srcs := make([]importer.Source, 0, len(rest)-1)
	for _, name := range rest[1:] {
		b, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(env.Stderr, "tether import: %v\n", err)
			return ExitUsage
		}
		srcs = append(srcs, importer.Source{Name: name, Data: b})
	}
	var res *importer.Result
	var err error
	if rest[0] == "httpd" {
		res, err = importer.HTTPD(srcs[0])
	} else {
		res, err = importer.JK(srcs[0], srcs[1:]...)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "tether import: %v\n", err)
		return ExitUsage
	}
	fmt.Fprint(env.Stdout, res.YAML)
	for _, n := range res.Notes {
		fmt.Fprintln(env.Stderr, n)
	}
	return ExitOK
}
