package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
)

// The soak proof (issue 7): 30 simulated days at ≥ 100× real speed with
// 10,000 series, memory flat. TestRunSoak runs `trailsight run` as a child
// reading a real NATS stream that this test feeds with synthetic CloudTrail
// records as fast as the service takes them, and samples the child's RSS
// and the detector's series at the end of every simulated day. Short by
// default (500 series × 3 days); with -tags long, 10,000 series × 30 days:
//
//	go test -tags long ./cmd/trailsight -run TestRunSoak -v -timeout 30m

// soakOptions is one soak.
type soakOptions struct {
	series, days int
	maxMsgs      int64  // the input stream's bound (Limits retention, DiscardOld)
	checkpoint   string // run.checkpoint_interval; "" for the default
}

// soakSeries is one synthetic series: an API of an account and region.
type soakSeries struct {
	account, region, source, name string
	rate                          float64 // mean calls a minute at shape 1
}

// soakCatalog makes n series: 100 per account (50 APIs × 2 regions), 2 %
// busy (0.5–5 calls a minute), the rest rare (one call every 17 hours to
// one every 25 minutes), log-uniform.
func soakCatalog(n int, r *rand.Rand) ([]soakSeries, []float64) {
	ss := make([]soakSeries, n)
	cum := make([]float64, n)
	total := 0.0
	logU := func(lo, hi float64) float64 { return math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo))) }
	for i := range ss {
		k := i % 100
		ss[i] = soakSeries{account: strconv.Itoa(300000000000 + i/100), region: []string{"us-east-1", "eu-west-1"}[k/50],
			source: fmt.Sprintf("svc%d.amazonaws.com", k%12), name: fmt.Sprintf("Api%02d", k%50)}
		if i%50 == 7 {
			ss[i].rate = logU(0.5, 5)
		} else {
			ss[i].rate = logU(0.001, 0.04)
		}
		total += ss[i].rate
		cum[i] = total
	}
	return ss, cum
}

// soakShape is the diurnal and weekly shape of all traffic: office hours
// on weekdays peak at 1.6, nights at 0.4, weekends at 35 % of that.
func soakShape(m int) float64 {
	day, h := m/1440, float64(m%1440)/60
	f := 0.4
	if h >= 7 && h < 19 {
		f += 1.2 * math.Sin(math.Pi*(h-7)/12)
	}
	if day%7 >= 5 { // the archive starts on a Monday
		f *= 0.35
	}
	return f
}

func poissonN(r *rand.Rand, lambda float64) int {
	if lambda > 50 {
		return max(0, int(lambda+math.Sqrt(lambda)*r.NormFloat64()+0.5))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// appendSoakRecord appends a compact CloudTrail record.
func appendSoakRecord(b []byte, s *soakSeries, t time.Time, id uint64) []byte {
	b = append(b, `{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::`...)
	b = append(b, s.account...)
	b = append(b, `:assumed-role/app/worker","accountId":"`...)
	b = append(b, s.account...)
	b = append(b, `"},"eventTime":"`...)
	b = t.AppendFormat(b, "2006-01-02T15:04:05Z")
	b = append(b, `","eventSource":"`...)
	b = append(b, s.source...)
	b = append(b, `","eventName":"`...)
	b = append(b, s.name...)
	b = append(b, `","awsRegion":"`...)
	b = append(b, s.region...)
	b = append(b, `","sourceIPAddress":"10.0.0.1","userAgent":"aws-sdk-go-v2/1.30","requestParameters":null,"responseElements":null,"eventID":"`...)
	b = fmt.Appendf(b, "%08x-0000-4000-8000-%012x", id>>48, id&(1<<48-1))
	b = append(b, `","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"`...)
	b = append(b, s.account...)
	return append(b, `","eventCategory":"Management"}`...)
}

// soakDay is one row of the soak's table.
type soakDay struct {
	day            int
	rss            int64 // child VmRSS when it had read the day
	series         float64
	events         float64
	wall, dayWall  time.Duration
	insightsSoFar  int
	plantedSoFar   int
	plantedStarted int
	seriesSeen     int // series published so far
}

func TestRunSoak(t *testing.T) {
	// The short run is over in seconds: checkpoint often so that acks (and
	// the series gauge) move. The long one keeps the default interval; the
	// service also checkpoints every 100,000 events.
	o := soakOptions{series: 500, days: 3, maxMsgs: 400_000, checkpoint: "2s"}
	if longTests {
		o = soakOptions{series: 10_000, days: 30, maxMsgs: 1_500_000}
	}
	rows, speed := runSoak(t, o)
	t.Logf("\n%s", soakTable(rows))
	last := rows[len(rows)-1]
	t.Logf("%d series, %d days, %.0f events in %v: %.0f× real time, %.0f events/s", o.series, o.days, last.events,
		last.wall.Round(time.Second), speed, last.events/last.wall.Seconds())
	if speed < 100 {
		t.Errorf("%.0f× real time, want ≥ 100×", speed)
	}
	maxRSS := func(from, to int) int64 { // days from..to, 1-based
		var m int64
		for _, r := range rows[from-1 : to] {
			m = max(m, r.rss)
		}
		return m
	}
	if longTests {
		early, late := maxRSS(5, 10), maxRSS(20, 30)
		if float64(late) > 1.15*float64(early) {
			t.Errorf("RSS grew: %.0f MiB over days 20–30, %.0f MiB over days 5–10 (want ≤ +15 %%)", float64(late)/mib, float64(early)/mib)
		}
	} else if rss := maxRSS(1, o.days); rss > 256*mib {
		// A few seconds of run: the heap has not settled; only a bound.
		t.Errorf("RSS reached %.0f MiB, want ≤ 256 MiB", float64(rss)/mib)
	}
	if last.series < 0.9*float64(last.seriesSeen) || last.series > float64(last.seriesSeen) {
		t.Errorf("the detector knows %.0f series at its last checkpoint, %d were published", last.series, last.seriesSeen)
	}
	if last.plantedSoFar == 0 || last.plantedStarted < last.plantedSoFar*9/10 {
		t.Errorf("%d of %d planted bursts raised a Start, want ≥ 90 %%", last.plantedStarted, last.plantedSoFar)
	}
}

// runSoak feeds o.days of synthetic traffic to a `trailsight run` child,
// throttled on its backlog, and samples it at the end of every day.
func runSoak(t *testing.T, o soakOptions) ([]soakDay, float64) {
	ctx := context.Background()
	dir := t.TempDir()
	url := startTestNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	// Limits retention bounded by MaxMsgs, DiscardOld: acknowledged history
	// goes, and the publisher never lets the unacknowledged part near the
	// bound, so nothing unread is discarded (checked below, and by the
	// count of events the service read).
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SOAK", Subjects: []string{stream.DefaultEventsPrefix + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, MaxMsgs: o.maxMsgs, Discard: jetstream.DiscardOld})
	if err != nil {
		t.Fatal(err)
	}

	r := rand.New(rand.NewPCG(7, uint64(o.series)))
	ss, cum := soakCatalog(o.series, r)
	total := cum[len(cum)-1]

	// Planted bursts: every 12 hours from hour 36, +15 calls a minute for
	// 10 minutes, alternately on a busy and on a rare series.
	type planted struct {
		series, minute int
		started        bool
	}
	var plants []*planted
	for m, k := 36*60+17, 0; m < o.days*1440-30; m, k = m+12*60, k+1 {
		i := r.IntN(o.series)
		for (i%50 == 7) != (k%2 == 0) {
			i = r.IntN(o.series)
		}
		plants = append(plants, &planted{series: i, minute: m})
	}
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	insights := 0
	sub := subscribeStarts(t, nc, &mu, func(in detector.Insight) {
		insights++
		for _, p := range plants {
			s := &ss[p.series]
			at := t0.Add(time.Duration(p.minute) * time.Minute)
			if !p.started && in.Account == s.account && in.Region == s.region && in.EventName == s.name &&
				in.EventSource == s.source && !in.Time.Before(at.Add(-2*time.Minute)) && in.Time.Before(at.Add(10*time.Minute)) {
				p.started = true
			}
		}
	})
	defer sub.Unsubscribe()

	listen := freeAddr(t)
	cfg := runConfig{source: url + "/SOAK?durable=soak", listen: listen, insights: url + "/INSIGHTS?create=1", checkpoint: o.checkpoint}.write(t, dir)
	svc := startRun(t, cfg, listen)
	cons, err := js.Consumer(ctx, "SOAK", "soak")
	if err != nil {
		t.Fatal(err)
	}

	// The sampler: once the service has read through the end of a day,
	// the child's RSS, its series and events.
	bounds := make(chan int64, o.days)
	rowsc := make(chan soakDay, o.days)
	start := time.Now()
	go func() {
		defer close(rowsc)
		prev := start
		for day := 1; ; day++ {
			b, ok := <-bounds
			if !ok {
				return
			}
			for {
				m, err := svc.scrape()
				if err == nil && m["trailsight_events_total"] >= float64(b) {
					now := time.Now()
					rss, _ := procStatus(svc.cmd.Process.Pid, "VmRSS")
					mu.Lock()
					row := soakDay{day: day, rss: rss, series: m["trailsight_series"], events: m["trailsight_events_total"],
						wall: now.Sub(start), dayWall: now.Sub(prev), insightsSoFar: insights}
					for _, p := range plants {
						if p.minute < day*1440 {
							row.plantedSoFar++
							if p.started {
								row.plantedStarted++
							}
						}
					}
					mu.Unlock()
					rowsc <- row
					prev = now
					break
				}
				select {
				case <-svc.done:
					t.Errorf("trailsight run exited (%v):\n%s", svc.err, svc.stderr.String())
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()

	// The publisher.
	var published int64
	var id uint64
	var buf []byte
	type rec struct {
		series int
		t      time.Time
	}
	var minute []rec
	seen, nSeen := make([]bool, len(ss)), 0
	throttle := func() {
		for {
			ci, err := cons.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			si, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if si.State.FirstSeq > ci.AckFloor.Stream+1 {
				t.Fatalf("the stream discarded unread records: first %d, ack floor %d", si.State.FirstSeq, ci.AckFloor.Stream)
			}
			if ci.NumPending < 100_000 && published-int64(ci.AckFloor.Stream) < o.maxMsgs*6/10 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for m := 0; m < o.days*1440; m++ {
		at := t0.Add(time.Duration(m) * time.Minute)
		minute = minute[:0]
		for n := poissonN(r, total*soakShape(m)); n > 0; n-- {
			minute = append(minute, rec{sort.SearchFloat64s(cum, r.Float64()*total), at.Add(time.Duration(r.IntN(60)) * time.Second)})
		}
		for _, p := range plants {
			if m >= p.minute && m < p.minute+10 {
				for range poissonN(r, 15) {
					minute = append(minute, rec{p.series, at.Add(time.Duration(r.IntN(60)) * time.Second)})
				}
			}
		}
		slices.SortStableFunc(minute, func(a, b rec) int { return a.t.Compare(b.t) })
		for _, e := range minute {
			e.series = min(e.series, len(ss)-1)
			s := &ss[e.series]
			if !seen[e.series] {
				seen[e.series] = true
				nSeen++
			}
			id++
			buf = appendSoakRecord(buf[:0], s, e.t, id)
			msg := &nats.Msg{Subject: stream.DefaultEventsPrefix + "." + s.account + "." + s.region, Data: slices.Clone(buf)}
			for {
				_, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Second))
				if err == nil {
					break
				}
				if err != jetstream.ErrTooManyStalledMsgs {
					t.Fatal(err)
				}
			}
			if published++; published%20_000 == 0 {
				throttle()
			}
		}
		if m%1440 == 1439 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				t.Fatal("publishes not acknowledged after a minute")
			}
			bounds <- published
		}
	}
	close(bounds)
	var rows []soakDay
	for row := range rowsc {
		rows = append(rows, row)
		t.Logf("day %d: RSS %.1f MiB, %.0f series, %.0f events, %.1fs", row.day, float64(row.rss)/mib, row.series, row.events, row.wall.Seconds())
	}
	rows[len(rows)-1].seriesSeen = nSeen
	// The series gauge is set at checkpoints: wait for one that holds
	// everything.
	if m, err := svc.scrape(); err == nil {
		ck := m["trailsight_checkpoints_total"]
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if m, err := svc.scrape(); err == nil && m["trailsight_checkpoints_total"] > ck {
				rows[len(rows)-1].series = m["trailsight_series"]
				break
			}
		}
	}
	if len(rows) != o.days {
		t.Fatalf("sampled %d days of %d", len(rows), o.days)
	}
	wall := rows[len(rows)-1].wall
	time.Sleep(time.Second) // the last insights on their way
	svc.stop()
	if svc.err != nil {
		t.Errorf("trailsight run: %v\n%s", svc.err, svc.stderr.String())
	}
	last := rows[len(rows)-1]
	if int64(last.events) != published {
		t.Errorf("the service read %.0f events, %d were published", last.events, published)
	}
	mu.Lock()
	last.plantedSoFar, last.plantedStarted = len(plants), 0
	for _, p := range plants {
		if p.started {
			last.plantedStarted++
			continue
		}
		sr := ss[p.series]
		t.Logf("planted burst without a Start: %s %s %s at day %d %02d:%02d (normal %.3f calls/min × shape %.2f, +15/min for 10 min)",
			sr.account, sr.region, sr.name, p.minute/1440+1, p.minute%1440/60, p.minute%60, sr.rate, soakShape(p.minute))
	}
	last.insightsSoFar = insights
	mu.Unlock()
	rows[len(rows)-1] = last
	return rows, float64(o.days) * 86400 / wall.Seconds()
}

func soakTable(rows []soakDay) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "day\tRSS MiB\tseries (last checkpoint)\tevents\twall s\tspeed ×\tStarts\tplanted found\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%d\t%.1f\t%.0f\t%.0f\t%.1f\t%.0f\t%d\t%d/%d\t\n", r.day, float64(r.rss)/mib, r.series, r.events,
			r.wall.Seconds(), 86400/r.dayWall.Seconds(), r.insightsSoFar, r.plantedStarted, r.plantedSoFar)
	}
	w.Flush()
	return sb.String()
}
