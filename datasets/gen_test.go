package datasets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// small is a scenario with anomalies that generates in about a second.
func small(out string) GenOptions {
	return GenOptions{Out: out, Days: 9, Seed: 7, Scale: 0.2, Accounts: 1, Regions: []string{"us-east-1", "eu-west-1"}}
}

// digest returns a checksum of every file's path and content under dir.
func digest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		fmt.Fprintf(h, "%s %d\n", rel, len(data))
		h.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestGenerateDeterministic(t *testing.T) {
	a, b := small(t.TempDir()), small(t.TempDir())
	a.Days, b.Days = 8, 8
	a.Regions, b.Regions = a.Regions[:1], b.Regions[:1]
	a.Workers, b.Workers = 1, 3
	la, sa, err := Generate(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	lb, sb, err := Generate(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if sa != sb {
		t.Errorf("stats differ: %+v vs %+v", sa, sb)
	}
	if da, db := digest(t, a.Out), digest(t, b.Out); da != db {
		t.Errorf("same seed, different bytes: %s vs %s", da, db)
	}
	ja, _ := json.Marshal(la)
	jb, _ := json.Marshal(lb)
	if !bytes.Equal(ja, jb) {
		t.Error("same seed, different labels")
	}
	c := a
	c.Out = t.TempDir()
	c.Seed++
	if _, _, err := Generate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if digest(t, a.Out) == digest(t, c.Out) {
		t.Error("different seeds, same bytes")
	}
}

var (
	keyRE  = regexp.MustCompile(`^AWSLogs/(\d{12})/CloudTrail/([a-z]{2}-[a-z]+-\d)/(\d{4})/(\d{2})/(\d{2})/(\d{12})_CloudTrail_([a-z]{2}-[a-z]+-\d)_(\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$`)
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// record is what the tests check in every generated record.
type record struct {
	EventVersion string `json:"eventVersion"`
	UserIdentity struct {
		Type        string `json:"type"`
		PrincipalID string `json:"principalId"`
		Arn         string `json:"arn"`
		AccountID   string `json:"accountId"`
		AccessKeyID string `json:"accessKeyId"`
	} `json:"userIdentity"`
	EventTime          time.Time       `json:"eventTime"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AwsRegion          string          `json:"awsRegion"`
	SourceIPAddress    string          `json:"sourceIPAddress"`
	UserAgent          string          `json:"userAgent"`
	ErrorCode          string          `json:"errorCode"`
	ErrorMessage       string          `json:"errorMessage"`
	RequestParameters  json.RawMessage `json:"requestParameters"`
	ResponseElements   json.RawMessage `json:"responseElements"`
	RequestID          string          `json:"requestID"`
	EventID            string          `json:"eventID"`
	ReadOnly           *bool           `json:"readOnly"`
	EventType          string          `json:"eventType"`
	ManagementEvent    *bool           `json:"managementEvent"`
	RecipientAccountID string          `json:"recipientAccountId"`
	EventCategory      string          `json:"eventCategory"`
}

// scanArchive decodes every file of an archive, checks its key and records,
// and calls fn for each record.
func scanArchive(t *testing.T, dir string, fn func(key string, r *record)) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dir, "AWSLogs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		key, _ := filepath.Rel(dir, p)
		key = filepath.ToSlash(key)
		m := keyRE.FindStringSubmatch(key)
		if m == nil {
			t.Fatalf("key %s does not look like AWS's", key)
		}
		delivered, err := time.Parse("20060102T1504Z", m[8])
		if err != nil {
			t.Fatal(err)
		}
		if m[1] != m[6] || m[2] != m[7] || delivered.Format("2006/01/02") != m[3]+"/"+m[4]+"/"+m[5] || delivered.Minute()%5 != 0 {
			t.Errorf("key %s: account, region or date disagree", key)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		var doc struct{ Records []record }
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if len(doc.Records) == 0 {
			t.Errorf("%s: no records", key)
		}
		for i := range doc.Records {
			r := &doc.Records[i]
			lag := delivered.Sub(r.EventTime)
			// 20 minutes: the delay tail rounded up; 5 more for a duplicate file.
			if lag < time.Minute || lag > 25*time.Minute {
				t.Errorf("%s: record at %s delivered %s later", key, r.EventTime, lag)
			}
			if r.RecipientAccountID != m[1] || r.AwsRegion != m[2] {
				t.Errorf("%s: record of %s/%s", key, r.RecipientAccountID, r.AwsRegion)
			}
			fn(key, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGenerateArchive(t *testing.T) {
	opts := small(t.TempDir())
	labels, st, err := Generate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	// per label: events of its series inside its span
	inSpan := make([]int, len(labels.Labels))
	scanArchive(t, opts.Out, func(key string, r *record) {
		ids[r.EventID]++
		switch {
		case r.EventVersion != "1.08" && r.EventVersion != "1.09",
			r.UserIdentity.Type != "IAMUser" && r.UserIdentity.Type != "AssumedRole",
			r.UserIdentity.Arn == "" || r.UserIdentity.PrincipalID == "" || r.UserIdentity.AccessKeyID == "" || r.UserIdentity.AccountID != r.RecipientAccountID,
			r.EventSource == "" || r.EventName == "" || r.SourceIPAddress == "" || r.UserAgent == "",
			len(r.RequestParameters) == 0 || len(r.ResponseElements) == 0,
			!uuidRE.MatchString(r.EventID), r.RequestID == "",
			r.ReadOnly == nil || r.ManagementEvent == nil || r.EventType != "AwsApiCall",
			*r.ManagementEvent != (r.EventCategory == "Management"),
			r.EventCategory != "Management" && r.EventCategory != "Data",
			r.EventTime.Second() == 0 && r.EventTime.Nanosecond() != 0:
			t.Fatalf("%s: bad record %+v", key, r)
		}
		if strings.HasPrefix(r.ErrorCode, "AccessDenied") || r.ErrorCode == "Client.UnauthorizedOperation" {
			if !strings.Contains(r.ErrorMessage, "is not authorized to perform") {
				t.Errorf("%s: %s with message %q", key, r.ErrorCode, r.ErrorMessage)
			}
		}
		for i, l := range labels.Labels {
			if l.EventName == r.EventName && l.EventSource == r.EventSource && l.Region == r.AwsRegion &&
				!r.EventTime.Before(l.Start) && r.EventTime.Before(l.End) && (l.ErrorCode == "" || l.ErrorCode == r.ErrorCode) {
				inSpan[i]++
			}
		}
	})
	dups := 0
	for _, c := range ids {
		if c > 1 {
			dups++
		}
	}
	if int64(len(ids)) != st.Events {
		t.Errorf("read %d distinct records, stats say %d", len(ids), st.Events)
	}
	if (dups > 0) != (st.DuplicateFiles > 0) {
		t.Errorf("%d duplicated eventIDs, %d duplicate files", dups, st.DuplicateFiles)
	}
	if err := labels.Validate(); err != nil {
		t.Fatal(err)
	}
	read, err := ReadLabels(filepath.Join(opts.Out, "labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Labels) != len(labels.Labels) || !read.Start.Equal(labels.Start) {
		t.Errorf("labels.json differs from the labels returned")
	}
	kinds := map[string]int{}
	history := labels.Start.Add(historyDays * 24 * time.Hour)
	for i, l := range labels.Labels {
		kinds[l.Kind]++
		if l.Kind == KindUnseen {
			if l.Start.Before(labels.Start) || l.End.After(history) {
				t.Errorf("label %+v outside [start, start+7d]", l)
			}
		} else if l.Start.Before(history) || l.End.After(labels.End) {
			t.Errorf("label %+v outside [start+7d, end]", l)
		}
		switch l.Kind {
		case KindGap:
			if inSpan[i] != 0 {
				t.Errorf("gap %+v has %d calls", l, inSpan[i])
			}
		case KindBurst, KindLimit, KindError, KindDecoyReadBurst, KindDecoyDataBurst:
			if inSpan[i] == 0 {
				t.Errorf("%s %+v has no calls", l.Kind, l)
			}
		}
	}
	for _, k := range []string{KindBurst, KindGap, KindLimit, KindError, KindDecoyReadBurst, KindDecoyDataBurst,
		KindDecoyGrowth, KindDecoyHoliday, KindDecoyDeploy, KindUnseen} {
		if kinds[k] == 0 {
			t.Errorf("no %s label", k)
		}
	}
}

// TestGenerateTwoDays is the small end-to-end run: two days, tiny scale.
func TestGenerateTwoDays(t *testing.T) {
	opts := GenOptions{Out: t.TempDir(), Days: 2, Scale: 0.1}
	labels, st, err := Generate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events == 0 || st.Files == 0 || st.Bytes == 0 || st.RawBytes < st.Bytes {
		t.Errorf("stats %+v", st)
	}
	for _, l := range labels.Labels {
		if !l.Decoy && l.Kind != KindUnseen {
			t.Errorf("anomaly planted in the history: %+v", l)
		}
	}
	ids := map[string]bool{}
	accounts := map[string]bool{}
	scanArchive(t, opts.Out, func(_ string, r *record) { ids[r.EventID] = true; accounts[r.RecipientAccountID] = true })
	if int64(len(ids)) != st.Events || len(accounts) != 2 {
		t.Errorf("%d records in %d accounts, want %d in 2", len(ids), len(accounts), st.Events)
	}
}

func TestGenerateCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Generate(ctx, small(t.TempDir())); err == nil {
		t.Error("Generate with a cancelled context succeeded")
	}
}

func TestGenOptionsErrors(t *testing.T) {
	for _, o := range []GenOptions{{}, {Out: "x", Days: -1}, {Out: "x", Scale: -1}, {Out: "x", Accounts: 5000}} {
		if _, _, err := Generate(context.Background(), o); err == nil {
			t.Errorf("Generate(%+v) succeeded", o)
		}
	}
}

func TestDeliverySlot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	late := 0
	for range 10000 {
		tm := int64(1772409600 + r.IntN(86400))
		s := deliverySlot(tm, r)
		if s%300 != 0 || s-tm < 60 || s-tm > 20*60 {
			t.Fatalf("deliverySlot(%d) = %d", tm, s)
		}
		if s-tm > 10*60 {
			late++
		}
	}
	if late == 0 || late > 1000 {
		t.Errorf("%d of 10000 records more than 10 minutes late", late)
	}
}

func TestTimeOfWeek(t *testing.T) {
	mon := DefaultStart.Unix()
	if got := minuteOfWeek(mon); got != 0 {
		t.Errorf("minuteOfWeek(Monday 00:00) = %d", got)
	}
	if got := weekday(mon + 6*86400 + 3600); got != 6 {
		t.Errorf("weekday(Sunday) = %d", got)
	}
	p := &profiles[office]
	if !(p[9*60] > p[3*60] && p[9*60] > p[6*1440+10*60] && p[9*60] > p[1440+9*60]) {
		t.Error("office profile: Monday 9:00 should beat nights, Sundays and Tuesdays")
	}
	var s stream
	for _, c := range catalog {
		if c.api == apiRunTask {
			s = c
		}
	}
	for _, tc := range []struct{ t, want int64 }{{0, 2 * 60}, {2 * 60, 2 * 60}, {3 * 60, 17 * 60}} {
		if got := nextRun(mon+tc.t, s); got != mon+tc.want {
			t.Errorf("nextRun(+%ds) = +%d, want +%d", tc.t, got-mon, tc.want)
		}
	}
}

// TestRecordGolden pins the bytes of a few records.
func TestRecordGolden(t *testing.T) {
	opts := GenOptions{Out: "x", Seed: 3}
	if err := opts.setDefaults(); err != nil {
		t.Fatal(err)
	}
	a := newAccount(&opts, 0)
	c := &recCtx{acct: a.id, region: "us-east-1", bucket: a.bucket, rng: rand.New(rand.NewPCG(1, 2))}
	tm := DefaultStart.Add(9*time.Hour + 30*time.Second)
	var b []byte
	for _, tc := range []struct {
		api *api
		who who
		err string
	}{
		{apiCreateTags, whoCI, ""},
		{apiDescribeInstances, whoAttacker, "Client.UnauthorizedOperation"},
		{apiListUsers, whoAttacker, "AccessDenied"},
		{apiDecrypt, whoLambda, "ThrottlingException"},
		{apiRunInstances, whoASG, ""},
		{apiPutObject, whoApp, ""},
		{apiGetFunction, whoAdmin, ""},
	} {
		b = appendRecord(b, tm, tc.api, &a.ids[tc.who], tc.err, c)
		b = append(b, '\n')
	}
	for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if !json.Valid(line) {
			t.Errorf("record %d is not JSON: %s", i, line)
		}
	}
	golden := filepath.Join("testdata", "records.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("records differ from %s (run with -update if intended):\n%s", golden, b)
	}
}

func TestParseTemplate(t *testing.T) {
	c := &recCtx{acct: "111122223333", region: "eu-west-1", bucket: "b", rng: rand.New(rand.NewPCG(1, 1))}
	got := string(appendTemplate(nil, parseTemplate(`{"a":"{acct}","r":"{region}","x":{},"k":"{nope}"}`), c))
	want := `{"a":"111122223333","r":"eu-west-1","x":{},"k":"{nope}"}`
	if got != want {
		t.Errorf("template = %s, want %s", got, want)
	}
	var keys []string
	for a := range templates {
		keys = append(keys, a.name)
	}
	sort.Strings(keys)
	for a, tp := range templates {
		for _, s := range [][]seg{tp.params, tp.resp} {
			if s == nil {
				continue
			}
			if out := appendTemplate(nil, s, c); !json.Valid(out) {
				t.Errorf("%s: template gives invalid JSON: %s", a.name, out)
			}
		}
	}
}

// BenchmarkGenerate measures a day of one account in one region at scale 1.
func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		opts := GenOptions{Out: b.TempDir(), Days: 1, Seed: 1, Accounts: 1, Regions: []string{"us-east-1"}}
		if _, st, err := Generate(context.Background(), opts); err != nil {
			b.Fatal(err)
		} else {
			b.ReportMetric(float64(st.Events), "records/op")
		}
	}
}
