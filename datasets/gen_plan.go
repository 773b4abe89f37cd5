package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// This file plans a scenario: the accounts, their principals and rates, the
// planted anomalies and the decoys, and the labels that describe them.

// Purposes keep the random streams of different uses apart.
const (
	purposeAccount = iota + 1
	purposePlan
	purposeDay
	purposeFile
)

// historyDays is how long the archive stays clean before anything is planted:
// a detector needs a week of history to learn a time-of-week baseline.
const historyDays = 7

// regionFactor scales the rates of regions after the first.
const regionFactor = 0.3

type wkind uint8

const (
	wExtra    wkind = iota // extra calls at rate/min (on top of the background)
	wMult                  // the background rate multiplied by rate
	wSuppress              // no background calls
	wErrShare              // a share of the calls fail with err
)

// window is a change to one stream of one account and region over [start, end) (Unix seconds).
type window struct {
	kind       wkind
	stream     int
	region     int
	start, end int64
	rate       float64 // wExtra: calls per minute at scale 1; wMult: factor
	share      float64 // wExtra, wErrShare: share of the calls that fail with err
	err        string
	who        who
	hasWho     bool // calls made by who rather than the stream's principal
	planted    bool // an anomaly or a one-off decoy (kept apart from each other)
}

// account is one planned account.
type account struct {
	idx      int
	id       string
	bucket   string
	ids      [numWho]identity
	rates    []float64 // per catalog stream, jittered
	holidays map[int64]bool
	windows  []window
}

var people = []string{"alice", "bob", "carol", "dmitri", "elena", "farid", "grace", "hiro"}

func randIP(r *rand.Rand) string {
	first := []int{3, 18, 34, 52, 81, 94, 185, 203}[r.IntN(8)]
	return fmt.Sprintf("%d.%d.%d.%d", first, r.IntN(256), r.IntN(256), 1+r.IntN(254))
}

func randStr(r *rand.Rand, alphabet string, n int) string {
	return string(appendRand(nil, r, alphabet, n))
}

func iamUser(acct, name string, r *rand.Rand) identity {
	arn := "arn:aws:iam::" + acct + ":user/" + name
	head := `{"type":"IAMUser","principalId":"AIDA` + randStr(r, upperAlnum, 17) + `","arn":"` + arn +
		`","accountId":"` + acct + `","accessKeyId":"AKIA` + randStr(r, upperAlnum, 16) + `","userName":"` + name + `"}`
	return identity{head: head, noDate: true, arn: arn, tls: true}
}

// assumedRole renders an AssumedRole identity; path is the role's IAM path
// ("/" or "/aws-reserved/sso.amazonaws.com/"), ec2 adds ec2RoleDelivery.
func assumedRole(acct, path, role, session, invokedBy string, ec2, mfa bool, r *rand.Rand) identity {
	roleID := "AROA" + randStr(r, upperAlnum, 17)
	arn := "arn:aws:sts::" + acct + ":assumed-role/" + role + "/" + session
	head := `{"type":"AssumedRole","principalId":"` + roleID + ":" + session + `","arn":"` + arn +
		`","accountId":"` + acct + `","accessKeyId":"ASIA` + randStr(r, upperAlnum, 16) +
		`","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"` + roleID +
		`","arn":"arn:aws:iam::` + acct + ":role" + path + role + `","accountId":"` + acct + `","userName":"` + role +
		`"},"webIdFederationData":{},"attributes":{"creationDate":"`
	tail := `","mfaAuthenticated":"` + fmt.Sprint(mfa) + `"}`
	if ec2 {
		tail += `,"ec2RoleDelivery":"2.0"`
	}
	tail += "}"
	if invokedBy != "" {
		tail += `,"invokedBy":"` + invokedBy + `"`
	}
	tail += "}"
	return identity{head: head, tail: tail, arn: arn, tls: invokedBy == "", invokedBy: invokedBy}
}

func newAccount(opts *GenOptions, idx int) *account {
	r := newRand(opts.Seed, purposeAccount, int64(idx))
	a := &account{idx: idx, holidays: map[int64]bool{}}
	a.id = fmt.Sprintf("%012d", 100000000000+r.Int64N(899999999999))
	a.bucket = "orders-data-" + a.id
	admin, dev := people[r.IntN(4)], people[4+r.IntN(4)]
	sso := func(perm string) string { return "AWSReservedSSO_" + perm + "_" + randStr(r, hexDigits, 16) }
	ids := &a.ids
	ids[whoAdmin] = assumedRole(a.id, "/aws-reserved/sso.amazonaws.com/", sso("AdministratorAccess"), admin+"@example.com", "", false, false, r)
	ids[whoAdmin].ip, ids[whoAdmin].ua, ids[whoAdmin].console = randIP(r), uaConsole, true
	ids[whoDev] = assumedRole(a.id, "/aws-reserved/sso.amazonaws.com/", sso("PowerUserAccess"), dev+"@example.com", "", false, false, r)
	ids[whoDev].ip, ids[whoDev].ua = randIP(r), uaCLI
	ids[whoCI] = iamUser(a.id, "ci-deployer", r)
	ids[whoCI].ip, ids[whoCI].ua = randIP(r), uaTerraform
	ids[whoApp] = assumedRole(a.id, "/", "orders-app-task", randStr(r, hexDigits, 32), "", false, false, r)
	ids[whoApp].ip, ids[whoApp].ua = randIP(r), uaGoSDK
	ids[whoLambda] = assumedRole(a.id, "/", "orders-api-exec", "orders-api", "", false, false, r)
	ids[whoLambda].ip, ids[whoLambda].ua = randIP(r), uaBoto3
	ids[whoSSM] = assumedRole(a.id, "/", "prod-ec2-ssm", "i-0"+randStr(r, hexDigits, 16), "", true, false, r)
	ids[whoSSM].ip, ids[whoSSM].ua = randIP(r), uaSSMAgent
	ids[whoMonitor] = assumedRole(a.id, "/", "DatadogIntegrationRole", randStr(r, hexDigits, 32), "", false, false, r)
	ids[whoMonitor].ip, ids[whoMonitor].ua = randIP(r), uaDatadog
	ids[whoBackup] = assumedRole(a.id, "/", "backup-runner", "backup-runner", "", false, false, r)
	ids[whoBackup].ip, ids[whoBackup].ua = randIP(r), uaBoto3
	ids[whoASG] = assumedRole(a.id, "/aws-service-role/autoscaling.amazonaws.com/", "AWSServiceRoleForAutoScaling", "AutoScaling", "autoscaling.amazonaws.com", false, false, r)
	ids[whoASG].ip, ids[whoASG].ua = "autoscaling.amazonaws.com", "autoscaling.amazonaws.com"
	ids[whoScheduler] = assumedRole(a.id, "/", "scheduler-ecs-runner", randStr(r, hexDigits, 32), "scheduler.amazonaws.com", false, false, r)
	ids[whoScheduler].ip, ids[whoScheduler].ua = "scheduler.amazonaws.com", "scheduler.amazonaws.com"
	ids[whoLegacy] = iamUser(a.id, "jenkins-old", r)
	ids[whoLegacy].ip, ids[whoLegacy].ua = randIP(r), uaLegacy
	ids[whoAttacker] = assumedRole(a.id, "/", "eks-node-role", "i-0"+randStr(r, hexDigits, 16), "", true, false, r)
	ids[whoAttacker].ip, ids[whoAttacker].ua = randIP(r), uaPacu

	a.rates = make([]float64, len(catalog))
	for i, s := range catalog {
		a.rates[i] = s.rate * (0.7 + 0.6*r.Float64())
	}
	return a
}

// Time-of-week profiles, indexed by minute of the week from Monday 00:00
// UTC, normalised to a mean of 1.
var profiles [2][7 * 1440]float64

func init() {
	for d := range 7 {
		for m := range 1440 {
			h := float64(m) / 60
			i := d*1440 + m
			profiles[flat][i] = 1 + 0.25*math.Sin(2*math.Pi*(h-9)/24)
			if d >= 5 {
				profiles[flat][i] *= 0.85
			}
			profiles[office][i] = officeLevel(d, h)
		}
	}
	for p := range profiles {
		var sum float64
		for _, v := range profiles[p] {
			sum += v
		}
		mean := sum / float64(len(profiles[p]))
		for i := range profiles[p] {
			profiles[p][i] /= mean
		}
	}
}

// officeLevel is the unnormalised activity of people and CI on day d
// (0 = Monday) at hour h: busy from 9 to 17, quiet at night and at weekends,
// with a Monday-morning peak.
func officeLevel(d int, h float64) float64 {
	if d >= 5 {
		return 0.06
	}
	var v float64
	switch {
	case h < 7:
		v = 0.06
	case h < 9:
		v = 0.06 + 0.94*(h-7)/2
	case h < 12:
		v = 1
	case h < 13:
		v = 0.7
	case h < 17:
		v = 1
	case h < 19:
		v = 1 - 0.85*(h-17)/2
	default:
		v = 0.12
	}
	if d == 0 && h >= 8 && h < 11 {
		v *= 1.7
	}
	return v
}

// minuteOfWeek returns the minute of the week (Monday 00:00 UTC = 0) of Unix second t.
func minuteOfWeek(t int64) int {
	days := t / 86400
	return int((days+3)%7)*1440 + int(t%86400/60) // 1970-01-01 was a Thursday
}

// weekday returns 0 for Monday … 6 for Sunday.
func weekday(t int64) int { return int((t/86400 + 3) % 7) }

// streamsTagged returns the catalog indexes whose tag list holds tag.
func streamsTagged(tag string) []int {
	var out []int
	for i, s := range catalog {
		if slices.Contains(strings.Fields(s.tag), tag) {
			out = append(out, i)
		}
	}
	return out
}

// planner places windows and writes labels for one account.
type planner struct {
	opts     *GenOptions
	a        *account
	r        *rand.Rand
	start    int64 // archive start
	histEnd  int64 // first second where anomalies may start
	end      int64 // archive end
	labels   []Label
	nRegions int
}

func (p *planner) label(kind, insightType string, region, stream int, errCode string, start, end int64, note string) {
	decoy, _ := kindIsDecoy(kind)
	l := Label{Kind: kind, InsightType: insightType, Account: p.a.id, Region: p.opts.Regions[region],
		ErrorCode: errCode, Start: time.Unix(start, 0).UTC(), End: time.Unix(end, 0).UTC(), Decoy: decoy, Note: note}
	if stream >= 0 {
		l.EventSource, l.EventName = catalog[stream].api.source, catalog[stream].api.name
	}
	p.labels = append(p.labels, l)
}

// place finds a start for a planted window of dur minutes in region that
// keeps 30 minutes away from every other planted window of the account and region.
func (p *planner) place(region, dur int) (int64, bool) {
	lo, hi := p.histEnd/60, p.end/60-int64(dur)-60
	if hi <= lo {
		return 0, false
	}
	for range 100 {
		s := (lo + p.r.Int64N(hi-lo)) * 60
		e := s + int64(dur)*60
		ok := true
		for _, w := range p.a.windows {
			if w.planted && w.region == region && s < w.end+1800 && w.start < e+1800 {
				ok = false
				break
			}
		}
		if ok {
			return s, true
		}
	}
	return 0, false
}

func (p *planner) pick(idx []int) int { return idx[p.r.IntN(len(idx))] }

// region picks a region for stream s: primary-only streams live in the
// first region; others are in the first region 70% of the time.
func (p *planner) region(s int) int {
	if catalog[s].primary || p.nRegions == 1 || p.r.Float64() < 0.7 {
		return 0
	}
	return 1 + p.r.IntN(p.nRegions-1)
}

func (p *planner) add(w window) { p.a.windows = append(p.a.windows, w) }

// plan fills a.windows and returns the account's labels.
func plan(opts *GenOptions, a *account) []Label {
	p := &planner{opts: opts, a: a, r: newRand(opts.Seed, purposePlan, int64(a.idx)),
		start: opts.Start.Unix(), nRegions: len(opts.Regions)}
	p.histEnd = p.start + historyDays*86400
	p.end = p.start + int64(opts.Days)*86400
	p.recurring()
	if opts.Days <= historyDays || opts.Background {
		return p.labels
	}
	weeks := (opts.Days - historyDays + 6) / 7
	for range weeks {
		p.bursts()
		p.gaps()
		p.limits()
		p.enumeration()
		p.oneOffDecoys()
	}
	return p.labels
}

// recurring plans what happens every week from the first day — slow growth,
// the weekly peak, the daily deploy, and a holiday — labelling what falls
// after the history as decoys, and the first weekly peak and the first
// deploy as unseen: those patterns were established before the archive
// begins, but the archive does not show it yet.
func (p *planner) recurring() {
	for _, s := range streamsTagged("growth") {
		if p.end > p.histEnd {
			p.label(KindDecoyGrowth, "ApiCallRateInsight", 0, s, "", p.histEnd, p.end, "rate grows 30% a week from the first day")
		}
	}
	// A holiday: a weekday after the history, not a Thursday (the weekly peak).
	var days []int64
	for d := p.histEnd; d < p.end; d += 86400 {
		if wd := weekday(d); wd < 5 && wd != 3 {
			days = append(days, d)
		}
	}
	if len(days) > 0 {
		h := days[p.r.IntN(len(days))]
		p.a.holidays[h/86400] = true
		for ri := range p.opts.Regions {
			p.label(KindDecoyHoliday, "", ri, -1, "", h, h+86400, "a weekday as quiet as a Sunday")
		}
	}
	deployed := false // the archive holds a deploy
	for day := p.start - p.start%86400; day < p.end; day += 86400 {
		wd := weekday(day)
		if wd == 3 { // Thursday 13:00-16:00: the weekly report queries, 4x
			for _, s := range streamsTagged("weekly") {
				st, en := day+13*3600, day+16*3600
				p.add(window{kind: wMult, stream: s, start: st, end: en, rate: 4})
				if st >= p.histEnd && en <= p.end {
					p.label(KindDecoyWeekly, "ApiCallRateInsight", 0, s, "", st, en, "weekly report queries, 4x every Thursday")
				} else if st >= p.start && en <= p.end { // the history holds one Thursday
					p.label(KindUnseen, "ApiCallRateInsight", 0, s, "", st, en, "weekly report queries, 4x every Thursday: the first in the archive")
				}
			}
		}
		if wd < 5 && !p.a.holidays[day/86400] { // weekdays 15:00-15:10: the deploy, 2x
			for _, s := range streamsTagged("deploy") {
				st, en := day+15*3600, day+15*3600+600
				p.add(window{kind: wMult, stream: s, start: st, end: en, rate: 2})
				switch {
				case st >= p.histEnd && en <= p.end:
					p.label(KindDecoyDeploy, "ApiCallRateInsight", 0, s, "", st, en, "daily deploy doubles the rate for ten minutes")
				case !deployed && st >= p.start && en <= p.end:
					p.label(KindUnseen, "ApiCallRateInsight", 0, s, "", st, en, "daily deploy doubles the rate for ten minutes: the first in the archive")
				}
			}
			deployed = deployed || day+15*3600 >= p.start
		}
	}
}

func (p *planner) bursts() {
	scale := p.opts.Scale
	// A busy write API runs away for a few minutes.
	if s := p.pick(streamsTagged("busy-write")); true {
		ri, dur := p.region(s), 5+p.r.IntN(11)
		if st, ok := p.place(ri, dur); ok {
			rate := 10 + 15*p.r.Float64()
			p.add(window{kind: wExtra, stream: s, region: ri, start: st, end: st + int64(dur)*60, rate: rate, planted: true})
			p.label(KindBurst, "ApiCallRateInsight", ri, s, "", st, st+int64(dur)*60,
				fmt.Sprintf("short burst on a busy API: +%.1f calls/min for %d min", rate*scale, dur))
		}
	}
	// A rare API, by a leaked key.
	if s := p.pick(streamsTagged("rare-write")); true {
		ri, dur := p.region(s), 3+p.r.IntN(15)
		if st, ok := p.place(ri, dur); ok {
			rate := 1 + 3*p.r.Float64()
			p.add(window{kind: wExtra, stream: s, region: ri, start: st, end: st + int64(dur)*60, rate: rate, who: whoLegacy, hasWho: true, planted: true})
			p.label(KindBurst, "ApiCallRateInsight", ri, s, "", st, st+int64(dur)*60,
				fmt.Sprintf("burst on a rare API by a leaked key: +%.1f calls/min for %d min", rate*scale, dur))
		}
	}
	// A long burst: instances launched for hours.
	if s := p.pick(streamsTagged("long-burst")); true {
		ri, dur := p.region(s), 90+p.r.IntN(150)
		if st, ok := p.place(ri, dur); ok {
			rate := 0.7 + 1.3*p.r.Float64()
			p.add(window{kind: wExtra, stream: s, region: ri, start: st, end: st + int64(dur)*60, rate: rate, who: whoLegacy, hasWho: true, planted: true})
			p.label(KindBurst, "ApiCallRateInsight", ri, s, "", st, st+int64(dur)*60,
				fmt.Sprintf("long burst: +%.1f calls/min for %d min", rate*scale, dur))
		}
	}
}

func (p *planner) gaps() {
	// A periodic job stops for several of its periods.
	s := p.pick(streamsTagged("job"))
	per := catalog[s].period
	dur := per*4 + p.r.IntN(per*4)
	ri := p.region(s)
	if st, ok := p.place(ri, dur); ok {
		en := st + int64(dur)*60
		p.add(window{kind: wSuppress, stream: s, region: ri, start: st, end: en, planted: true})
		first, next := nextRun(st, catalog[s]), nextRun(en, catalog[s])
		p.label(KindGap, "ApiCallRateInsight", ri, s, "", first, next,
			fmt.Sprintf("a job that runs every %d min stops for %d runs", per, (next-first)/int64(per*60)))
		p.labels[len(p.labels)-1].PeriodMinutes = per
	}
	// A steady flow stops.
	s = p.pick(streamsTagged("steady"))
	dur = 60 + p.r.IntN(180)
	ri = p.region(s)
	if st, ok := p.place(ri, dur); ok {
		en := st + int64(dur)*60
		p.add(window{kind: wSuppress, stream: s, region: ri, start: st, end: en, planted: true})
		p.label(KindGap, "ApiCallRateInsight", ri, s, "", st, en, fmt.Sprintf("a steady flow stops for %d min", dur))
	}
}

// nextRun returns the first run of periodic stream s at or after t.
func nextRun(t int64, s stream) int64 {
	per, off := int64(s.period)*60, int64(s.offset%s.period)*60
	k := (t - off + per - 1) / per
	if t-off < 0 {
		k = 0
	}
	return k*per + off
}

func (p *planner) limits() {
	cands := streamsTagged("limit")
	for range 2 {
		s := p.pick(cands)
		dur := 10 + p.r.IntN(36)
		if st, ok := p.place(0, dur); ok {
			en := st + int64(dur)*60
			share := 0.4 + 0.4*p.r.Float64()
			code := catalog[s].api.throttle
			extra := 4 + 8*p.r.Float64()
			p.add(window{kind: wExtra, stream: s, start: st, end: en, rate: extra, share: share, err: code, planted: true})
			p.add(window{kind: wErrShare, stream: s, start: st, end: en, share: share, err: code, planted: true})
			p.label(KindLimit, "ApiErrorRateInsight", 0, s, code, st, en,
				fmt.Sprintf("a runaway loop: +%.1f calls/min, %.0f%% of all calls throttled for %d min", extra*p.opts.Scale, share*100, dur))
		}
	}
}

// enumeration plants an access-denied sweep: a stolen role tries several
// read APIs, every call denied.
func (p *planner) enumeration() {
	var cands []int
	for i, s := range catalog {
		if s.api.readOnly && !s.api.data && s.period == 0 {
			cands = append(cands, i)
		}
	}
	p.r.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	n := 3 + p.r.IntN(2)
	dur := 10 + p.r.IntN(21)
	st, ok := p.place(0, dur)
	if !ok {
		return
	}
	en := st + int64(dur)*60
	for _, s := range cands[:n] {
		rate := 2 + 6*p.r.Float64()
		code := catalog[s].api.denied
		p.add(window{kind: wExtra, stream: s, start: st, end: en, rate: rate, share: 1, err: code, who: whoAttacker, hasWho: true, planted: true})
		p.label(KindError, "ApiErrorRateInsight", 0, s, code, st, en,
			fmt.Sprintf("access-denied enumeration: %.1f denied calls/min for %d min", rate*p.opts.Scale, dur))
	}
}

func (p *planner) oneOffDecoys() {
	if s := p.pick(streamsTagged("busy-read")); true {
		dur := 10 + p.r.IntN(11)
		if st, ok := p.place(0, dur); ok {
			en := st + int64(dur)*60
			p.add(window{kind: wExtra, stream: s, start: st, end: en, rate: 20 + 20*p.r.Float64(), who: whoDev, hasWho: true, planted: true})
			p.label(KindDecoyReadBurst, "ApiCallRateInsight", 0, s, "", st, en, "a burst of read-only calls")
		}
	}
	if s := p.pick(streamsTagged("data")); true {
		dur := 15 + p.r.IntN(16)
		if st, ok := p.place(0, dur); ok {
			en := st + int64(dur)*60
			p.add(window{kind: wExtra, stream: s, start: st, end: en, rate: 40 + 60*p.r.Float64(), planted: true})
			p.label(KindDecoyDataBurst, "ApiCallRateInsight", 0, s, "", st, en, "a burst of data events (S3 PutObject)")
		}
	}
}
