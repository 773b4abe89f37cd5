// Package notify delivers Insights events (detector.Insight) to where people
// and tools read them.
//
// Every destination implements Notifier and passes the same conformance test
// (notify_test.go: idempotent re-send, context cancellation, no retention,
// Close):
//   - Folder writes gzip'd {"Records":[…]} files in the CloudTrail-Insight S3
//     layout under a local directory, keys derived from the content so that a
//     re-run writes the same keys and bytes; S3 writes the same objects to a
//     bucket (aws-sdk-go-v2, any S3-compatible endpoint);
//   - NATS publishes each event to <prefix>.<account>.<region>.<insightType>,
//     with JetStream's Nats-Msg-Id = eventID so re-sends are dropped;
//     StartEmbeddedNATS runs the real nats-server in process;
//   - Slack, Teams, Discord and a signed generic webhook (Chat) post one
//     readable message per insight, within each service's limits, grouping
//     floods;
//   - JSONLines writes one event per line to an io.Writer (stdout);
//   - Multi fans out to several notifiers.
//
// Reliable wraps any of them with retries (exponential back-off with jitter,
// Retry-After honoured, permanent errors not retried) and a disk spool that
// is re-sent later, also by the next process: nothing is dropped silently.
// detector.ReadInsights reads back what Folder wrote.
package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/trailsight/trailsight/detector"
)

// Notifier delivers insight events. Notify may be called from one goroutine
// at a time; it must be idempotent per EventID (re-sending the same events
// writes/sends the same thing) and must not retain ins after it returns.
// Notify returns ctx.Err() (possibly wrapped) when ctx is done before the
// events are delivered. Close flushes and releases resources; Notify after
// Close returns ErrClosed.
type Notifier interface {
	Notify(ctx context.Context, ins []detector.Insight) error
	Close() error
}

// ErrClosed is returned by Notify after Close.
var ErrClosed = errors.New("notify: notifier closed")

// Named is a Notifier with a name for error messages and summaries, e.g.
// "folder out/" or "stdout".
type Named struct {
	Name string
	Notifier
}

type multi []Named

// NewMulti returns a Notifier that hands each call to every one of ns in
// turn, even when some fail, and returns errors.Join of the failures, each
// wrapped with its notifier's name. Close closes every one of ns.
func NewMulti(ns ...Named) Notifier {
	return multi(append([]Named(nil), ns...))
}

func (m multi) Notify(ctx context.Context, ins []detector.Insight) error {
	var errs []error
	for _, n := range m {
		if err := n.Notify(ctx, ins); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (m multi) Close() error {
	var errs []error
	for _, n := range m {
		if err := n.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: close: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}
