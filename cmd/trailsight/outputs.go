package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/notify"
)

// outputs is the set of destinations of one run. Network destinations are
// wrapped in notify.Reliable: retried with back-off, spooled to disk when
// they stay down, and re-sent from the spool by the next run.
type outputs struct {
	notify.Notifier
	reliable []*notify.Reliable
	names    []string
	spool    string
}

// outputHelp documents --out; shared by the commands that take it.
const outputHelp = `Where insights go; repeat for several:
  DIR                      a folder, written in the CloudTrail-Insight S3 layout
  -                        JSON lines on standard output (--envelope: EventBridge envelopes)
  s3://BUCKET/PREFIX       a bucket, same layout; endpoint from AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL, credentials from the standard AWS chain
  nats://HOST:PORT[/STREAM][?prefix=…&envelope=1]   NATS (JetStream: Nats-Msg-Id = eventID)
  slack=URL  teams=URL  discord=URL                   chat webhooks, one readable message per insight
  webhook=URL              generic JSON webhook signed with HMAC-SHA256 ($TRAILSIGHT_WEBHOOK_SECRET)
Default: -.`

// openOutputs turns --out values into one notifier.
func openOutputs(ctx context.Context, outs []configs.Out, strict, envelope bool, spool string, log zerolog.Logger, reg prometheus.Registerer) (*outputs, error) {
	o := &outputs{spool: spool}
	var ns []notify.Named
	stdout := false
	fail := func(err error) (*outputs, error) {
		for _, n := range ns {
			n.Close()
		}
		return nil, err
	}
	for _, out := range outs {
		spec := out.Spec
		var n notify.Named
		network := true
		switch {
		case spec == "-":
			if stdout {
				return fail(errors.New("--out -: given twice"))
			}
			stdout, network = true, false
			n = notify.Named{Name: "stdout", Notifier: notify.NewJSONLines(os.Stdout, notify.JSONLinesOptions{Envelope: envelope, StrictAWS: strict})}
		case strings.HasPrefix(spec, "s3://"):
			bucket, prefix, err := notify.ParseS3URL(spec)
			if err != nil {
				return fail(fmt.Errorf("--out %s: %w", spec, err))
			}
			s, err := notify.NewS3(ctx, notify.S3Options{Bucket: bucket, Prefix: prefix, StrictAWS: strict, KMSKeyID: out.KMSKeyID})
			if err != nil {
				return fail(fmt.Errorf("--out %s: %w", spec, err))
			}
			n = notify.Named{Name: "s3 " + bucket + " " + shortHash(spec), Notifier: s}
		case strings.HasPrefix(spec, "nats://"), strings.HasPrefix(spec, "tls://"):
			opt, err := notify.ParseNATSURL(spec)
			if err != nil {
				return fail(fmt.Errorf("--out: %w", err))
			}
			if strict {
				opt.StrictAWS = true
			}
			if envelope {
				opt.Envelope = true
			}
			opt.Logger = log
			s, err := notify.NewNATS(ctx, opt)
			if err != nil {
				return fail(fmt.Errorf("--out nats: %w", err))
			}
			n = notify.Named{Name: "nats " + shortHash(spec), Notifier: s}
		default:
			c, ok, err := notify.ParseChatURL(spec)
			if err != nil {
				return fail(fmt.Errorf("--out: %w", err))
			}
			if ok {
				n = c
				break
			}
			if strings.Contains(spec, "://") {
				return fail(fmt.Errorf("--out %s: not a destination trailsight knows (see --help)", spec))
			}
			f, err := notify.NewFolder(spec, notify.FolderOptions{StrictAWS: strict})
			if err != nil {
				return fail(fmt.Errorf("--out %s: %w", spec, err))
			}
			n, network = notify.Named{Name: "folder " + spec, Notifier: f}, false
		}
		if network {
			dir := filepath.Join(spool, strings.ReplaceAll(n.Name, " ", "-"))
			// A backfill cannot wait long for a destination: a few quick
			// tries, then the spool.
			r := notify.NewReliable(n, notify.ReliableOptions{SpoolDir: dir, Logger: log, Registerer: reg,
				Attempts: 4, Base: 200 * time.Millisecond, Max: 3 * time.Second})
			// What an earlier run could not deliver goes first.
			if err := r.Recover(ctx); err != nil {
				log.Warn().Err(err).Str("notifier", n.Name).Msg("spooled insights from an earlier run not yet delivered")
			}
			o.reliable = append(o.reliable, r)
			n = notify.Named{Name: n.Name, Notifier: r}
		}
		o.names = append(o.names, n.Name)
		ns = append(ns, n)
	}
	o.Notifier = notify.NewMulti(ns...)
	return o, nil
}

// finish flushes the spools one last time and reports what is still
// undelivered: an error naming the destinations and the spool folder, since
// those insights reach them only when a later run re-sends them.
func (o *outputs) finish(ctx context.Context) error {
	var errs []error
	for _, r := range o.reliable {
		_ = r.Flush(ctx)
		if st := r.Stats(); st.SpoolBatches > 0 {
			errs = append(errs, fmt.Errorf("%d batches of insights could not be delivered yet and wait in the spool", st.SpoolBatches))
		}
	}
	cerr := o.Close()
	if len(errs) > 0 {
		return fmt.Errorf("%w (spool %s: the next run with the same --spool re-sends them)", errors.Join(errs...), o.spool)
	}
	return cerr
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// defaultSpool is where undeliverable insights wait between runs.
func defaultSpool() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "trailsight", "spool")
	}
	return filepath.Join(os.TempDir(), "trailsight-spool")
}

var _ notify.Notifier = (*outputs)(nil)
