package config

// Log configures the server log: what tether serve says about itself
// (start, reloads, health changes, errors) on standard error. The access
// log is AccessLog.
type Log struct {
	// Level is the least severe level written: debug, info (default),
	// warn or error.
	Level string `yaml:"level"`
	// Format is text (default: one "key=value" line per record, as
	// log/slog's TextHandler) or json (one JSON object per line, for log
	// collectors). The access log (AccessLog) is JSON whatever Format says.
	Format string `yaml:"format"`
}

// Known values of the log settings.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
)

// log checks the log settings.
func (v *checker) log(l *Log) {
	v.oneOf("log.level", l.Level, LogLevels)
	v.oneOf("log.format", l.Format, LogFormats)
}
