// Package configs holds trailsight's TOML configuration: its types, one
// Default, decoding that rejects unknown keys, and validation that reports
// every problem with the key it concerns. The annotated example lives next
// to it in trailsight.example.toml. It does no other I/O.
package configs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
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
	Notify   Notify   `toml:"notify"`
	Run      Run      `toml:"run"`
	Log      Log      `toml:"log"`
}

// Run configures the service (trailsight run).
type Run struct {
	// Source is where CloudTrail events come from (see SourceKind):
	// "embedded" (default): the real NATS server run in process, holding
	// stream CLOUDTRAIL, fed with trailsight publish; nats://HOST:PORT/STREAM
	// (or tls://): a JetStream stream read with a durable consumer, see
	// stream.ParseNATSURL; s3://BUCKET/PREFIX: a bucket polled for new
	// files (credentials and endpoint from the environment, as for the AWS
	// CLI); a folder (a path, or file://PATH) polled for new files; "-":
	// standard input, until its end.
	Source string `toml:"source"`
	// PollInterval is the time between two listings of an S3 or folder
	// source.
	PollInterval Duration `toml:"poll_interval"`
	// PollWindow is the trailing window, in delivery time, that every
	// listing of an S3 or folder source covers again: a file landing later
	// than this after the delivery time its name gives is not read.
	PollWindow Duration `toml:"poll_window"`
	// From is where an S3 or folder source starts when there is no
	// checkpoint: RFC 3339 or YYYY-MM-DD (UTC); files delivered before it
	// are not read. Empty: now − poll_window. A past date backfills the
	// archive, then keeps watching.
	From string `toml:"from"`
	// StateDir holds checkpoints (detector state) and, for the embedded
	// server, its JetStream store.
	StateDir string `toml:"state_dir"`
	// CheckpointInterval is how often (wall clock) state is written, and the
	// events behind it acknowledged to the source.
	CheckpointInterval Duration `toml:"checkpoint_interval"`
	// Listen is the address of /metrics and /healthz; "" turns them off.
	Listen string `toml:"listen"`
	// EmbeddedPort is the client port of the embedded NATS server.
	EmbeddedPort int `toml:"embedded_port"`
	// ShutdownGrace bounds the drain on SIGTERM.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// Model, when set, starts a fresh service warm from a model file.
	Model string `toml:"model"`
	// Partitions is the number of partitions of a NATS source's stream
	// (see stream.PartitionTransform); 0 or 1: not partitioned, one
	// consumer reads the whole stream.
	Partitions int `toml:"partitions"`
	// Partition is the one this instance serves when Partitions > 1: an
	// index from 0, or "auto" (the default): the first whose lease is free.
	Partition Partition `toml:"partition"`
	// StateStore is where checkpoints go: "file" (in StateDir) or "nats"
	// (JetStream key-value and object store of the NATS source's server,
	// behind a lease, so that another instance can take over). Empty: "nats"
	// when partitioned, else "file".
	StateStore string `toml:"state_store"`
	// LeaseTTL is how long an instance that stopped renewing still holds
	// its partition: the longest a takeover waits after a crash. Every
	// instance must use the same.
	LeaseTTL Duration `toml:"lease_ttl"`
}

// Partition is run.partition: a partition's index, "auto" or "" (auto).
// In TOML it is an integer or the string "auto".
type Partition string

// UnmarshalTOML takes an integer or a string.
func (p *Partition) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*p = Partition(strconv.FormatInt(v, 10))
	case string:
		*p = Partition(v)
	default:
		return fmt.Errorf("run.partition %v: want an index (0, 1, …) or \"auto\"", v)
	}
	return nil
}

// Index returns the partition's index, or auto true.
func (p Partition) Index() (k int, auto bool, err error) {
	if p == "" || p == "auto" {
		return 0, true, nil
	}
	k, err = strconv.Atoi(string(p))
	if err != nil || k < 0 {
		return 0, false, fmt.Errorf("run.partition %q: want an index (0, 1, …) or \"auto\"", string(p))
	}
	return k, false, nil
}

// State stores, as StateStoreKind returns them.
const (
	StateFile = "file"
	StateNATS = "nats"
)

// Partitioned reports whether the source is read as several partitions.
func (r Run) Partitioned() bool { return r.Partitions > 1 }

// StateStoreKind is StateStore with its default applied.
func (r Run) StateStoreKind() string {
	switch {
	case r.StateStore != "":
		return r.StateStore
	case r.Partitioned():
		return StateNATS
	}
	return StateFile
}

// MaxPartitions bounds run.partitions.
const MaxPartitions = 1024

// Source kinds, as SourceKind returns them.
const (
	SourceNATS   = "nats"
	SourceS3     = "s3"
	SourceFolder = "folder"
	SourceStdin  = "stdin"
)

// SourceKind returns the kind of run.source and, for a folder, its path
// (file:// removed); "" for a value of no kind.
func (r Run) SourceKind() (kind, path string) {
	s := r.Source
	switch {
	case s == "embedded", strings.HasPrefix(s, "nats://"), strings.HasPrefix(s, "tls://"):
		return SourceNATS, ""
	case strings.HasPrefix(s, "s3://"):
		return SourceS3, ""
	case s == "-":
		return SourceStdin, ""
	case strings.HasPrefix(s, "file://"):
		return SourceFolder, strings.TrimPrefix(s, "file://")
	case s == "" || strings.Contains(s, "://"):
		return "", ""
	}
	return SourceFolder, s
}

// FromTime parses From; zero when it is empty.
func (r Run) FromTime() (time.Time, error) {
	if r.From == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, r.From); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, r.From); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("run.from %q: want RFC 3339 (2026-03-02T10:00:00Z) or YYYY-MM-DD", r.From)
}

func (r Run) validate() []error {
	var errs []error
	switch kind, path := r.SourceKind(); kind {
	case "":
		errs = append(errs, fmt.Errorf("run.source %q: want \"embedded\", nats://HOST:PORT/STREAM, s3://BUCKET/PREFIX, a folder or \"-\"", r.Source))
	case SourceS3:
		if _, _, err := stream.ParseS3URL(r.Source); err != nil {
			errs = append(errs, fmt.Errorf("run.source: %w", err))
		}
	case SourceFolder:
		if path == "" {
			errs = append(errs, fmt.Errorf("run.source %q: empty folder path", r.Source))
		}
	}
	if d := r.PollInterval.Duration; d <= 0 || d > 24*time.Hour {
		errs = append(errs, fmt.Errorf("run.poll_interval %v: want > 0 and at most 24h", d))
	}
	if d := r.PollWindow.Duration; d < time.Minute {
		errs = append(errs, fmt.Errorf("run.poll_window %v: want at least 1m (CloudTrail delivers within about 15m)", d))
	}
	if _, err := r.FromTime(); err != nil {
		errs = append(errs, err)
	}
	if r.StateDir == "" {
		errs = append(errs, errors.New("run.state_dir: empty"))
	}
	if d := r.CheckpointInterval.Duration; d < time.Second || d > time.Hour {
		errs = append(errs, fmt.Errorf("run.checkpoint_interval %v: want 1s to 1h", d))
	}
	if p := r.EmbeddedPort; p < 0 || p > 65535 {
		errs = append(errs, fmt.Errorf("run.embedded_port %d: want 0 to 65535", p))
	}
	if r.ShutdownGrace.Duration <= 0 {
		errs = append(errs, fmt.Errorf("run.shutdown_grace %v: want > 0", r.ShutdownGrace))
	}
	return append(errs, r.validatePartitions()...)
}

func (r Run) validatePartitions() []error {
	var errs []error
	kind, _ := r.SourceKind()
	n := r.Partitions
	switch {
	case n < 0 || n > MaxPartitions:
		errs = append(errs, fmt.Errorf("run.partitions %d: want 0 (not partitioned) to %d", n, MaxPartitions))
	case n > 1 && kind != SourceNATS && kind != "":
		errs = append(errs, fmt.Errorf("run.partitions %d: partitions are for a NATS source (run.source \"embedded\" or nats://HOST:PORT/STREAM), not a %s source: remove it", n, kind))
	}
	if k, auto, err := r.Partition.Index(); err != nil {
		errs = append(errs, err)
	} else if r.Partition != "" && n <= 1 {
		errs = append(errs, fmt.Errorf("run.partition %s: set run.partitions too (the number of partitions of the stream, 2 or more), or remove it", string(r.Partition)))
	} else if !auto && n > 1 && k >= n {
		errs = append(errs, fmt.Errorf("run.partition %d: want 0 to %d (run.partitions is %d) or \"auto\"", k, n-1, n))
	}
	switch st := r.StateStore; {
	case st != "" && st != StateFile && st != StateNATS:
		errs = append(errs, fmt.Errorf("run.state_store %q: want \"file\" or \"nats\"", st))
	case st == StateFile && n > 1:
		errs = append(errs, fmt.Errorf("run.state_store \"file\": partitions keep their state in NATS, where another instance can take it over: remove it or set \"nats\""))
	case st == StateNATS && kind != SourceNATS && kind != "":
		errs = append(errs, fmt.Errorf("run.state_store \"nats\": needs a NATS source (run.source \"embedded\" or nats://…), not a %s source: remove it", kind))
	}
	if r.StateStoreKind() == StateNATS {
		if d := r.LeaseTTL.Duration; d < time.Second || d > time.Hour {
			errs = append(errs, fmt.Errorf("run.lease_ttl %v: want 1s to 1h", d))
		}
		if strings.HasPrefix(r.Source, "nats://") || strings.HasPrefix(r.Source, "tls://") {
			if o, err := stream.ParseNATSURL(r.Source); err == nil && o.FilterSubject != "" && n > 1 {
				errs = append(errs, fmt.Errorf("run.source: filter=%s cannot be combined with run.partitions (each partition's consumer filters on its partition): remove filter=", o.FilterSubject))
			}
		}
	}
	return errs
}

// Notify lists destinations, added to any --out given on the command line.
// Each is a list, so that several of a kind may be given ([[notify.slack]]).
type Notify struct {
	// Spool is where insights wait while a network destination is down.
	Spool   string    `toml:"spool"`
	Folder  []Folder  `toml:"folder"`
	S3      []S3      `toml:"s3"`
	NATS    []NATS    `toml:"nats"`
	Slack   []Webhook `toml:"slack"`
	Teams   []Webhook `toml:"teams"`
	Discord []Webhook `toml:"discord"`
	Webhook []Webhook `toml:"webhook"`
}

// Folder is a local folder in the CloudTrail-Insight layout.
type Folder struct {
	Path string `toml:"path"`
}

// S3 is a bucket in the CloudTrail-Insight layout. The endpoint and
// credentials come from the environment as for the AWS CLI
// (AWS_ENDPOINT_URL_S3, AWS_PROFILE, …).
type S3 struct {
	URL      string `toml:"url"`        // s3://bucket/prefix
	KMSKeyID string `toml:"kms_key_id"` // SSE-KMS key; empty: the bucket's default encryption
}

// NATS is a NATS subject tree, see notify.ParseNATSURL for the URL's options.
type NATS struct {
	URL string `toml:"url"` // nats://host:port/STREAM?prefix=…&envelope=1
}

// Webhook is a chat or generic webhook. Its URL is a secret: give it in the
// environment variable named by url_env rather than in the file.
type Webhook struct {
	URL    string `toml:"url"`
	URLEnv string `toml:"url_env"`
}

// Out is one destination as the command line names it (an --out value),
// with what the value cannot carry.
type Out struct {
	Spec     string
	KMSKeyID string
}

// Outs returns the destinations of the [notify] section as --out values,
// in a fixed order: folders, S3, NATS, Slack, Teams, Discord, webhooks.
func (n Notify) Outs() ([]Out, error) {
	var out []Out
	var errs []error
	for _, f := range n.Folder {
		out = append(out, Out{Spec: f.Path})
	}
	for _, b := range n.S3 {
		out = append(out, Out{Spec: b.URL, KMSKeyID: b.KMSKeyID})
	}
	for _, b := range n.NATS {
		out = append(out, Out{Spec: b.URL})
	}
	for _, k := range []struct {
		kind string
		hs   []Webhook
	}{{"slack", n.Slack}, {"teams", n.Teams}, {"discord", n.Discord}, {"webhook", n.Webhook}} {
		for i, h := range k.hs {
			u := h.URL
			if h.URLEnv != "" {
				if u = os.Getenv(h.URLEnv); u == "" {
					errs = append(errs, fmt.Errorf("notify.%s[%d].url_env: $%s is not set", k.kind, i, h.URLEnv))
					continue
				}
			}
			out = append(out, Out{Spec: k.kind + "=" + u})
		}
	}
	return out, errors.Join(errs...)
}

func (n Notify) validate() []error {
	var errs []error
	for i, f := range n.Folder {
		if f.Path == "" {
			errs = append(errs, fmt.Errorf("notify.folder[%d].path: empty", i))
		}
	}
	for i, b := range n.S3 {
		if !strings.HasPrefix(b.URL, "s3://") || len(b.URL) <= len("s3://") {
			errs = append(errs, fmt.Errorf("notify.s3[%d].url %q: want s3://bucket/prefix", i, b.URL))
		}
	}
	for i, b := range n.NATS {
		if !strings.HasPrefix(b.URL, "nats://") && !strings.HasPrefix(b.URL, "tls://") {
			errs = append(errs, fmt.Errorf("notify.nats[%d].url %q: want nats://host:port[/STREAM]", i, b.URL))
		}
	}
	for _, k := range []struct {
		kind string
		hs   []Webhook
	}{{"slack", n.Slack}, {"teams", n.Teams}, {"discord", n.Discord}, {"webhook", n.Webhook}} {
		for i, h := range k.hs {
			if (h.URL == "") == (h.URLEnv == "") {
				errs = append(errs, fmt.Errorf("notify.%s[%d]: give one of url and url_env", k.kind, i))
			}
		}
	}
	return errs
}

// Detector tunes detection; see detector.Config for each field's meaning.
type Detector struct {
	Lateness Duration `toml:"lateness"`
	Windows  []int    `toml:"windows"`
	// FalseAlarmBudget is the false insights per 1,000 series-days of
	// normal traffic the threshold is derived from
	// (detector.ThresholdForBudget). A file sets it or threshold, not both.
	FalseAlarmBudget float64  `toml:"false_alarm_budget"`
	Threshold        float64  `toml:"threshold"`
	MinCount         int      `toml:"min_count"`
	MinRatio         float64  `toml:"min_ratio"`
	Calm             int      `toml:"calm"`
	Warmup           Duration `toml:"warmup"`
	GapFactor        float64  `toml:"gap_factor"`
	BaselineWindow   Duration `toml:"baseline_window"`
	Explain          bool     `toml:"explain"`
	PeakCap          float64  `toml:"peak_cap"`
	Early            bool     `toml:"early"`
	// Rules tune detection per series ([[detector.rules]]): the first
	// whose patterns all match a series applies to it.
	Rules []Rule `toml:"rules"`
}

// Rule is one [[detector.rules]] block; see detector.Rule. Patterns are
// shell patterns ("" or absent: any); overrides left at 0 keep the
// [detector] value. A rule sets false_alarm_budget or threshold, not both.
type Rule struct {
	Account          string   `toml:"account"`
	Region           string   `toml:"region"`
	EventSource      string   `toml:"event_source"`
	EventName        string   `toml:"event_name"`
	ErrorCode        string   `toml:"error_code"`
	InsightType      string   `toml:"insight_type"`
	Mute             []string `toml:"mute"`
	FalseAlarmBudget float64  `toml:"false_alarm_budget"`
	Threshold        float64  `toml:"threshold"`
	MinCount         int      `toml:"min_count"`
	MinRatio         float64  `toml:"min_ratio"`
	GapFactor        float64  `toml:"gap_factor"`
}

// detectorRule is r for the detector: a budget becomes its threshold.
func (r Rule) detectorRule() detector.Rule {
	thr := r.Threshold
	if r.FalseAlarmBudget > 0 && thr == 0 {
		thr = detector.ThresholdForBudget(r.FalseAlarmBudget)
	}
	return detector.Rule{
		Account: r.Account, Region: r.Region, EventSource: r.EventSource, EventName: r.EventName,
		ErrorCode: r.ErrorCode, InsightType: r.InsightType, Mute: r.Mute,
		Threshold: thr, MinCount: r.MinCount, MinRatio: r.MinRatio, GapFactor: r.GapFactor,
	}
}

// Input tunes reading.
type Input struct {
	// Workers decode files in parallel; 0 means one per CPU.
	Workers int `toml:"workers"`
	// DedupeWindow is how long (event time) eventIDs are remembered to drop
	// duplicate records. A record older than the newest event time less
	// detector.lateness is dropped as late anyway, so the window needs to be
	// a little longer than the lateness, no more: every ID in it is held in
	// memory (~40 bytes; 30 minutes at 1,000 events/s is about 70 MB).
	DedupeWindow Duration `toml:"dedupe_window"`
}

// Output tunes the insight files.
type Output struct {
	// StrictAWS leaves trailsight's explanation out of the S3-layout files,
	// so they hold exactly what CloudTrail would write.
	StrictAWS bool `toml:"strict_aws"`
	// Charts, when set, is a folder where a PNG chart of each insight is
	// drawn as it ends (detect --charts takes precedence; run uses this).
	Charts string `toml:"charts"`
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
			FalseAlarmBudget: detector.BudgetForThreshold(d.Threshold),
			MinCount:         d.MinCount, MinRatio: d.MinRatio, Calm: d.Calm, Warmup: Duration{d.Warmup},
			GapFactor: d.GapFactor, BaselineWindow: Duration{d.BaselineWindow}, Explain: d.Explain, PeakCap: d.PeakCap, Early: d.Early,
		},
		Input: Input{DedupeWindow: Duration{stream.DefaultDedupeWindow}},
		Run: Run{Source: "embedded", StateDir: "trailsight-state", CheckpointInterval: Duration{30 * time.Second},
			PollInterval: Duration{time.Minute}, PollWindow: Duration{time.Hour},
			Listen: "127.0.0.1:9464", EmbeddedPort: 4222, ShutdownGrace: Duration{30 * time.Second},
			LeaseTTL: Duration{30 * time.Second}},
		Log: Log{Level: "info", Format: "auto"},
	}
}

// DetectorConfig converts the detector section.
func (c Config) DetectorConfig() detector.Config {
	d := c.Detector
	var rules []detector.Rule
	for _, r := range d.Rules {
		rules = append(rules, r.detectorRule())
	}
	return detector.Config{
		Lateness: d.Lateness.Duration, Windows: d.Windows, Threshold: d.Threshold, MinCount: d.MinCount,
		MinRatio: d.MinRatio, Calm: d.Calm, Warmup: d.Warmup.Duration, GapFactor: d.GapFactor,
		BaselineWindow: d.BaselineWindow.Duration, Explain: d.Explain, PeakCap: d.PeakCap, Early: d.Early,
		Rules: rules,
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
	d := &c.Detector
	switch budget, thr := md.IsDefined("detector", "false_alarm_budget"), md.IsDefined("detector", "threshold"); {
	case budget && thr:
		return c, errors.New("detector: set false_alarm_budget or threshold, not both (the threshold is derived from the budget)")
	case budget && d.FalseAlarmBudget > 0:
		d.Threshold = detector.ThresholdForBudget(d.FalseAlarmBudget)
	case thr:
		d.FalseAlarmBudget = detector.BudgetForThreshold(d.Threshold)
	}
	return c, c.Validate()
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if b := c.Detector.FalseAlarmBudget; !(b > 0) {
		errs = append(errs, fmt.Errorf("detector.false_alarm_budget %v: want false insights per 1,000 series-days, > 0", b))
	}
	for i, r := range c.Detector.Rules {
		switch {
		case r.FalseAlarmBudget != 0 && r.Threshold != 0:
			errs = append(errs, fmt.Errorf("detector.rules[%d]: set false_alarm_budget or threshold, not both (the threshold is derived from the budget)", i))
		case r.FalseAlarmBudget < 0:
			errs = append(errs, fmt.Errorf("detector.rules[%d].false_alarm_budget %v: want > 0", i, r.FalseAlarmBudget))
		}
	}
	if err := c.DetectorConfig().Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("detector.%w", e))
		}
	}
	if c.Input.Workers < 0 {
		errs = append(errs, fmt.Errorf("input.workers %d: want ≥ 0", c.Input.Workers))
	}
	if w, l := c.Input.DedupeWindow.Duration, c.Detector.Lateness.Duration; w < 0 {
		errs = append(errs, fmt.Errorf("input.dedupe_window %v: want ≥ 0", c.Input.DedupeWindow))
	} else if w > 0 && l >= 0 && w < l+time.Minute {
		errs = append(errs, fmt.Errorf("input.dedupe_window %v: want at least detector.lateness (%v) + 1m, or a duplicate could be counted twice", w, l))
	}
	errs = append(errs, c.Notify.validate()...)
	errs = append(errs, c.Run.validate()...)
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
