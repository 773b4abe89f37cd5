// Package configs holds trailsight's TOML configuration: its types, one
// Default, decoding that rejects unknown keys, and validation that reports
// every problem with the key it concerns. The annotated example lives next
// to it in trailsight.example.toml. It does no other I/O.
package configs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/trailsight/trailsight/detector"
)

// Duration is a time.Duration written as "15m", "1h30m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. \"15m\" or \"2h\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is the whole configuration file.
type Config struct {
	Detector Detector `toml:"detector"`
	Input    Input    `toml:"input"`
	Output   Output   `toml:"output"`
	Log      Log      `toml:"log"`
}

// Detector tunes detection; see detector.Config for each field's meaning.
type Detector struct {
	Lateness       Duration `toml:"lateness"`
	Windows        []int    `toml:"windows"`
	Threshold      float64  `toml:"threshold"`
	MinCount       int      `toml:"min_count"`
	MinRatio       float64  `toml:"min_ratio"`
	Calm           int      `toml:"calm"`
	Warmup         Duration `toml:"warmup"`
	GapFactor      float64  `toml:"gap_factor"`
	BaselineWindow Duration `toml:"baseline_window"`
	Explain        bool     `toml:"explain"`
}

// Input tunes reading.
type Input struct {
	// Workers decode files in parallel; 0 means one per CPU.
	Workers int `toml:"workers"`
	// DedupeWindow is how long (event time) eventIDs are remembered to drop
	// duplicate records.
	DedupeWindow Duration `toml:"dedupe_window"`
}

// Output tunes the insight files.
type Output struct {
	// StrictAWS leaves trailsight's explanation out of the S3-layout files,
	// so they hold exactly what CloudTrail would write.
	StrictAWS bool `toml:"strict_aws"`
}

// Log sets logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // auto (console on a terminal, else JSON), console, json
}

// Default returns the configuration used when no file is given.
func Default() Config {
	d := detector.DefaultConfig()
	return Config{
		Detector: Detector{
			Lateness: Duration{d.Lateness}, Windows: d.Windows, Threshold: d.Threshold,
			MinCount: d.MinCount, MinRatio: d.MinRatio, Calm: d.Calm, Warmup: Duration{d.Warmup},
			GapFactor: d.GapFactor, BaselineWindow: Duration{d.BaselineWindow}, Explain: d.Explain,
		},
		Input: Input{DedupeWindow: Duration{2 * time.Hour}},
		Log:   Log{Level: "info", Format: "auto"},
	}
}

// DetectorConfig converts the detector section.
func (c Config) DetectorConfig() detector.Config {
	d := c.Detector
	return detector.Config{
		Lateness: d.Lateness.Duration, Windows: d.Windows, Threshold: d.Threshold, MinCount: d.MinCount,
		MinRatio: d.MinRatio, Calm: d.Calm, Warmup: d.Warmup.Duration, GapFactor: d.GapFactor,
		BaselineWindow: d.BaselineWindow.Duration, Explain: d.Explain,
	}
}

// Load reads path onto Default. Unknown keys are errors, with their names;
// syntax errors carry the line and column.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Default(), fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(string(b))
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes TOML text onto Default and validates it.
func Parse(text string) (Config, error) {
	c := Default()
	md, err := toml.Decode(text, &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return c, fmt.Errorf("line %d, column %d: %s", pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return c, err
	}
	if u := md.Undecoded(); len(u) > 0 {
		keys := make([]string, len(u))
		for i, k := range u {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("unknown keys: %s", strings.Join(keys, ", "))
	}
	return c, c.Validate()
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if err := c.DetectorConfig().Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("detector.%w", e))
		}
	}
	if c.Input.Workers < 0 {
		errs = append(errs, fmt.Errorf("input.workers %d: want ≥ 0", c.Input.Workers))
	}
	if c.Input.DedupeWindow.Duration < 0 {
		errs = append(errs, fmt.Errorf("input.dedupe_window %v: want ≥ 0", c.Input.DedupeWindow))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "auto", "console", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: want auto, console or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
