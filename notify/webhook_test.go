package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailsight/trailsight/detector"
)

// validateWebhook checks a generic webhook request as a receiver would:
// the signature and timestamp, {"insights":[…]} of CloudTrail Insights
// events, and the Idempotency-Key.
func validateWebhook(r *http.Request, body []byte) error {
	if err := VerifySignature([]byte(testKey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, testNow, 5*time.Minute); err != nil {
		return err
	}
	var msg struct {
		Insights []json.RawMessage `json:"insights"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		return err
	}
	if len(msg.Insights) == 0 {
		return errors.New("no insights")
	}
	var ins []detector.Insight
	for i, raw := range msg.Insights {
		var in detector.Insight
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("insights[%d]: %w", i, err)
		}
		if b, _ := in.MarshalJSON(); string(b) != string(raw) {
			return fmt.Errorf("insights[%d] is not AWS-shaped:\n%s\n%s", i, raw, b)
		}
		ins = append(ins, in)
	}
	if got, want := r.Header.Get(HeaderIdempotencyKey), batchKey(ins); got != want {
		return fmt.Errorf("Idempotency-Key %q, want %q", got, want)
	}
	return nil
}

func TestVerifySignature(t *testing.T) {
	key := []byte("k3y")
	body := []byte(`{"insights":[]}`)
	now := time.Unix(1720575720, 0)
	ts := "1720575720"
	good := Sign(key, ts, body)
	if !strings.HasPrefix(good, "v1=") || len(good) != 3+64 {
		t.Fatalf("Sign = %q", good)
	}
	for _, c := range []struct {
		name    string
		key     []byte
		ts, sig string
		body    []byte
		now     time.Time
		want    error
	}{
		{"good", key, ts, good, body, now, nil},
		{"good, clock 4 min ahead", key, ts, good, body, now.Add(4 * time.Minute), nil},
		{"good, clock 4 min behind", key, ts, good, body, now.Add(-4 * time.Minute), nil},
		{"rotated keys", key, ts, Sign([]byte("old"), ts, body) + ", " + good, body, now, nil},
		{"tampered body", key, ts, good, []byte(`{"insights":[{}]}`), now, ErrSignatureInvalid},
		{"wrong key", []byte("other"), ts, good, body, now, ErrSignatureInvalid},
		{"tampered timestamp", key, "1720575721", good, body, now, ErrSignatureInvalid},
		{"old timestamp (replay)", key, ts, good, body, now.Add(6 * time.Minute), ErrSignatureExpired},
		{"future timestamp", key, ts, good, body, now.Add(-6 * time.Minute), ErrSignatureExpired},
		{"no signature", key, ts, "", body, now, ErrSignatureMissing},
		{"no timestamp", key, "", good, body, now, ErrSignatureMissing},
		{"bad timestamp", key, "yesterday", good, body, now, ErrSignatureMissing},
		{"signature without version", key, ts, strings.TrimPrefix(good, "v1="), body, now, ErrSignatureInvalid},
	} {
		err := VerifySignature(c.key, c.ts, c.sig, c.body, c.now, 5*time.Minute)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: VerifySignature = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestWebhookRejectsEmptyKey(t *testing.T) {
	if _, err := NewWebhook("https://example.com/hook", "", ChatOptions{}); err == nil {
		t.Error("NewWebhook with an empty key: no error")
	}
}
