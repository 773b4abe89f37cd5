package detector

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// idNamespace is trailsight's namespace for name-based (SHA-1, version 5)
// UUIDs. It was generated once at random and must never change: every ID
// ever written depends on it.
var idNamespace = uuid.MustParse("d9518fb4-b3cf-44f2-9d85-190f426ae855")

// SharedEventID returns the sharedEventID of the insight on the series
// (account, region, source, name, t, errorCode) that started in the minute of
// start. It is a name-based UUID, so the same inputs give the same ID on a
// replay, a retry or a restart. start is taken in UTC and truncated to the
// minute; errorCode is "" for ApiCallRateInsight. It panics if t is unknown.
func SharedEventID(account, region, source, name string, t InsightType, errorCode string, start time.Time) string {
	var b strings.Builder
	b.WriteString("trailsight/sharedEventID/v1")
	// Length-prefixed fields: no value can forge another's boundary.
	for _, f := range [...]string{account, region, source, name, t.String(), errorCode,
		start.UTC().Truncate(time.Minute).Format(time.RFC3339)} {
		b.WriteByte('\n')
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
	}
	return uuid.NewSHA1(idNamespace, []byte(b.String())).String()
}

// EventID returns the eventID of the s event of the insight sharedEventID:
// the Start and the End of one insight get different IDs, each stable. It
// panics if s is unknown.
func EventID(sharedEventID string, s State) string {
	return uuid.NewSHA1(idNamespace, []byte("trailsight/eventID/v1\n"+s.String()+"\n"+sharedEventID)).String()
}
