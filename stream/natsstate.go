package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// NATSState keeps one checkpoint — an opaque blob of any size — under a
// key, in JetStream: the bytes in an object store bucket, under a name used
// once (<key>/<unique>), and a key-value entry of the same bucket name that
// names the current object. Key-value values are bounded by the server's
// max_payload (1 MB by default) and a detector's state is several MB; the
// object store chunks it and checks its digest on reading.
//
// Saving is atomic from a reader's point of view: the new object is written
// whole first, then the entry is switched to it by compare-and-set on the
// revision this NATSState last saw, then the previous object is deleted. A
// crash before the switch leaves the previous checkpoint current (and an
// orphan object that the next Load deletes); a writer that is no longer the
// owner (someone saved since it loaded) gets ErrStateConflict and changes
// nothing that counts.
//
// A NATSState is used from one goroutine.
type NATSState struct {
	kv  jetstream.KeyValue
	obs jetstream.ObjectStore
	key string
	rev uint64 // revision of the entry as last loaded or saved; 0: none
	cur string // object it names
}

// statePointer is the value of a NATSState's key-value entry.
type statePointer struct {
	Object string `json:"object"`
	Size   uint64 `json:"size"`
	Digest string `json:"digest"`
}

// OpenNATSState opens (creating them when missing) the key-value and
// object store buckets named bucket, for the checkpoint under key.
func OpenNATSState(ctx context.Context, js jetstream.JetStream, bucket, key string) (*NATSState, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1,
			Description: "trailsight checkpoints: the object holding each", Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream: state bucket %s: %w", bucket, err)
	}
	obs, err := js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket,
			Description: "trailsight checkpoints", Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			obs, err = js.ObjectStore(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream: state object store %s: %w", bucket, err)
	}
	return &NATSState{kv: kv, obs: obs, key: key}, nil
}

// String names where the checkpoint is.
func (s *NATSState) String() string { return "nats kv " + s.kv.Bucket() + "/" + s.key }

// Load returns the current checkpoint, nil when there is none, and
// remembers its revision for the next Save. It deletes the objects under
// the key that no entry names (left by a crash during a Save).
func (s *NATSState) Load(ctx context.Context) ([]byte, error) {
	s.rev, s.cur = 0, ""
	var data []byte
	e, err := s.kv.Get(ctx, s.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, fmt.Errorf("stream: load %s: %w", s, err)
	default:
		s.rev = e.Revision()
		var p statePointer
		if err := json.Unmarshal(e.Value(), &p); err != nil {
			return nil, fmt.Errorf("stream: load %s: entry %q: %w", s, e.Value(), err)
		}
		if data, err = s.obs.GetBytes(ctx, p.Object); err != nil {
			return nil, fmt.Errorf("stream: load %s: object %s: %w", s, p.Object, err)
		}
		s.cur = p.Object
	}
	s.sweep(ctx)
	return data, nil
}

// sweep deletes the objects under the key other than the current one.
func (s *NATSState) sweep(ctx context.Context) {
	list, err := s.obs.List(ctx)
	if err != nil {
		return // jetstream.ErrNoObjectsFound, or try next time
	}
	for _, o := range list {
		if strings.HasPrefix(o.Name, s.key+"/") && o.Name != s.cur {
			_ = s.obs.Delete(ctx, o.Name)
		}
	}
}

// Save makes data the checkpoint (see NATSState). ErrStateConflict when
// someone else saved since this NATSState last loaded or saved. check,
// when not nil, is called once the object is written, just before the
// switch: an error from it (the caller's lease has run out meanwhile)
// abandons the save.
func (s *NATSState) Save(ctx context.Context, data []byte, check func() error) error {
	name := s.key + "/" + nuid.Next()
	info, err := s.obs.PutBytes(ctx, name, data)
	if err != nil {
		return fmt.Errorf("stream: save %s: object: %w", s, err)
	}
	if check != nil {
		if err := check(); err != nil {
			_ = s.obs.Delete(ctx, name)
			return err
		}
	}
	val, _ := json.Marshal(statePointer{Object: name, Size: info.Size, Digest: info.Digest})
	var rev uint64
	if s.rev == 0 {
		rev, err = s.kv.Create(ctx, s.key, val)
	} else {
		rev, err = s.kv.Update(ctx, s.key, val, s.rev)
	}
	if err != nil {
		_ = s.obs.Delete(ctx, name)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%w: %s (revision %d is no longer the last): %w", ErrStateConflict, s, s.rev, err)
		}
		return fmt.Errorf("stream: save %s: %w", s, err)
	}
	prev := s.cur
	s.rev, s.cur = rev, name
	if prev != "" {
		_ = s.obs.Delete(ctx, prev)
	}
	return nil
}
