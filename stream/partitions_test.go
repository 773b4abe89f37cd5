package stream

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPartitionTransform: the server stores <prefix>.<account>.<region> as
// <prefix>.<p>.<account>.<region>, each account and region always in the
// same partition, headers untouched; a partition's filter subject selects
// exactly its messages.
func TestPartitionTransform(t *testing.T) {
	noLeaks(t)
	js := testJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 3
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"},
		SubjectTransform: new(PartitionTransform("ev", n))}); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for round := range 2 {
		for a := range 20 {
			for _, r := range []string{"us-east-1", "eu-west-1"} {
				m := nats.NewMsg(EventSubject("ev", &Event{Account: fmt.Sprintf("1000000000%02d", a), Region: r}))
				m.Header.Set(HeaderRegion, r)
				m.Data = fmt.Appendf(nil, "%d", round)
				if _, err := js.PublishMsg(ctx, m); err != nil {
					t.Fatal(err)
				}
				sent++
			}
		}
	}
	where := map[string]int{} // account.region → partition
	got := 0
	for k := range n {
		c, err := js.OrderedConsumer(ctx, "EV", jetstream.OrderedConsumerConfig{FilterSubjects: []string{PartitionSubject("ev", k)}})
		if err != nil {
			t.Fatal(err)
		}
		info, _ := c.Info(ctx)
		if info.NumPending == 0 {
			t.Errorf("partition %d: no message (40 account-regions over %d partitions)", k, n)
			continue
		}
		b, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			got++
			tok := strings.Split(m.Subject(), ".")
			if len(tok) != 4 || tok[1] != fmt.Sprint(k) {
				t.Errorf("partition %d: subject %s", k, m.Subject())
				continue
			}
			ar := tok[2] + "." + tok[3]
			if p, ok := where[ar]; ok && p != k {
				t.Errorf("%s in partitions %d and %d", ar, p, k)
			}
			where[ar] = k
			if m.Headers().Get(HeaderRegion) != tok[3] {
				t.Errorf("%s: header %s = %q", m.Subject(), HeaderRegion, m.Headers().Get(HeaderRegion))
			}
		}
	}
	if got != sent || len(where) != 40 {
		t.Errorf("read %d messages of %d, %d account-regions of 40", got, sent, len(where))
	}
}

func TestCheckPartitions(t *testing.T) {
	good := PartitionTransform("trailsight.events", 4)
	for _, tc := range []struct {
		name string
		cfg  jetstream.StreamConfig
		n    int
		want string // prefix, or a part of the error
		bad  bool
	}{
		{"matching", jetstream.StreamConfig{Name: "S", Subjects: []string{"trailsight.events.>"}, SubjectTransform: &good}, 4, "trailsight.events", false},
		{"other prefix", jetstream.StreamConfig{Name: "S", Subjects: []string{"ct.>"}, SubjectTransform: new(PartitionTransform("ct", 2))}, 2, "ct", false},
		{"spaces", jetstream.StreamConfig{Name: "S", SubjectTransform: &jetstream.SubjectTransformConfig{Source: "a.*.*",
			Destination: "a.{{ partition(2,1,2) }}.{{wildcard(1)}}.{{wildcard(2)}}"}}, 2, "a", false},
		{"none", jetstream.StreamConfig{Name: "S", Subjects: []string{"ct.>"}}, 2,
			`stream S has no subject transform (its messages are not partitioned), and run.partitions is 2: give it the subject transform {"src": "ct.*.*", "dest": "ct.{{partition(2,1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}"}`, true},
		{"other count", jetstream.StreamConfig{Name: "S", Subjects: []string{"trailsight.events.>"}, SubjectTransform: &good}, 2,
			`transforms "trailsight.events.*.*" into "trailsight.events.{{partition(4,1,2)}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := CheckPartitions(tc.cfg, tc.n)
			switch {
			case tc.bad && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("CheckPartitions(%s, %d) = %q, %v; want an error with %s", tc.name, tc.n, p, err, tc.want)
			case !tc.bad && (err != nil || p != tc.want):
				t.Errorf("CheckPartitions(%s, %d) = %q, %v; want %q", tc.name, tc.n, p, err, tc.want)
			}
		})
	}
}
