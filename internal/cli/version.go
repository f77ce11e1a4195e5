package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version overrides the release version read from the build info; a
// release build may set it with
// -ldflags "-X github.com/tetherlb/tether/internal/cli.Version=v1.2.3".
// Default "": the module version `go install …@vX` or `go build` records.
var Version = ""

func runVersion(_ context.Context, env Env, args []string) int {
	fs := newFlags(env, "version", "")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(env.Stdout, versionLine(Version, bi, runtime.GOOS+"/"+runtime.GOARCH))
	return ExitOK
}

// versionLine is what `tether version` prints, on one line:
//
//	tether VERSION (revision REV, TIME[, modified]) GOVERSION OS/ARCH
//
// VERSION is override if set, else the main module's version from bi
// ("dev" when the build recorded none, as `go run` or a build outside a
// module cache or VCS checkout). The parenthesis lists what bi's VCS
// settings hold (vcs.revision, vcs.time, vcs.modified), and is left out
// when they hold nothing. bi may be nil.
func versionLine(override string, bi *debug.BuildInfo, platform string) string {
	version, goVersion := "dev", runtime.Version()
	var vcs []string
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if r := settings["vcs.revision"]; r != "" {
			vcs = append(vcs, "revision "+r)
		}
		if t := settings["vcs.time"]; t != "" {
			vcs = append(vcs, t)
		}
		if settings["vcs.modified"] == "true" {
			vcs = append(vcs, "modified")
		}
	}
	if override != "" {
		version = override
	}
	line := "tether " + version
	if len(vcs) > 0 {
		line += " (" + strings.Join(vcs, ", ") + ")"
	}
	return line + " " + goVersion + " " + platform
}
