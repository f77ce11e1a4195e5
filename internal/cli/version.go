package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version; the build may set it with
// -ldflags "-X github.com/tetherlb/tether/internal/cli.Version=v1.2.3".
var Version = "dev"

func runVersion(_ context.Context, env Env, args []string) int {
	fs := newFlags(env, "version", "")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	fmt.Fprintf(env.Stdout, "tether %s%s %s %s/%s\n", Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}
