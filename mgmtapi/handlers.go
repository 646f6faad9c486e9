package mgmtapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meridiandns/meridian/zones"
)

func itoa(i int) string { return strconv.Itoa(i) }

// readZone reads the zone of r's path for p.
func (a *API) readZone(r *http.Request, p Principal) (*zones.Zone, error) {
	origin, prob := zoneParam(r)
	if prob != nil {
		return nil, prob
	}
	if !p.CanRead(origin) {
		return nil, forbidden("reading zone %s takes the read, zone:%s or admin scope", origin, origin)
	}
	z, err := a.b.Zone(r.Context(), origin)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("no zone %s", origin)
	}
	return z, err
}

// getOne answers GET of one resource of kind k, with its ETag; a request
// whose If-None-Match lists it gets 304.
func (a *API) getOne(k *kind) handler {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		z, err := a.readZone(r, p)
		if err != nil {
			return err
		}
		v, err := k.find(z, r)
		if err != nil {
			return err
		}
		if v == nil {
			return notFound("no %s %s", k.name, strings.TrimPrefix(r.URL.Path, Prefix))
		}
		return getAnswer(w, r, v)
	}
}

func getAnswer(w http.ResponseWriter, r *http.Request, v any) error {
	tag := etag(v)
	if inm := r.Header.Get("If-None-Match"); inm != "" && matches(inm, tag, true) {
		w.Header().Set("ETag", tag)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeJSON(w, http.StatusOK, tag, v)
	return nil
}

// writeZone checks that p may write the zone of r's path and returns it.
func writeZone(r *http.Request, p Principal) (string, error) {
	origin, prob := zoneParam(r)
	if prob != nil {
		return "", prob
	}
	if !p.CanWrite(origin) {
		return "", forbidden("changing zone %s takes the zone:%s or admin scope", origin, origin)
	}
	return origin, nil
}

// writeTarget is writeZone with the write's options (force, dry_run).
func writeTarget(r *http.Request, p Principal) (string, Write, error) {
	origin, err := writeZone(r, p)
	if err != nil {
		return "", Write{}, err
	}
	wo, prob := writeOptions(r, p)
	if prob != nil {
		return "", Write{}, prob
	}
	return origin, wo, nil
}

// putOne answers PUT of one resource of kind k: it is created, or
// replaced if the request's If-Match holds.
func (a *API) putOne(k *kind) handler {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		origin, wo, err := writeTarget(r, p)
		if err != nil {
			return err
		}
		v, prob := k.decode(a, w, r)
		if prob != nil {
			return prob
		}
		var before, after any
		res, err := a.b.Change(r.Context(), origin, func(cur *zones.Zone) (*zones.Zone, error) {
			switch {
			case cur == nil && !k.zone:
				return nil, notFound("no zone %s", origin)
			case cur == nil && !p.Admin():
				return nil, forbidden("creating a zone takes the admin scope")
			case cur != nil:
				var err error
				if before, err = k.find(cur, r); err != nil {
					return nil, err
				}
			}
			if prob := preconditions(r, before); prob != nil {
				return nil, prob
			}
			if cur == nil {
				cur = &zones.Zone{Origin: origin, Source: "api"}
			}
			forgetLines(cur)
			l := newLines()
			if prob := k.put(cur, r, v, l); prob != nil {
				return nil, prob
			}
			if prob := l.validate(cur); prob != nil {
				return nil, prob
			}
			var err error
			after, err = k.find(cur, r)
			return cur, err
		}, wo)
		if err != nil {
			return err
		}
		tag := etag(after)
		status := http.StatusOK
		if before == nil && res.Applied {
			status = http.StatusCreated
			w.Header().Set("Location", r.URL.Path)
		}
		headerTag := tag
		if wo.DryRun {
			headerTag = ""
		}
		writeJSON(w, status, headerTag, result(res, wo, tag))
		return nil
	}
}

// deleteOne answers DELETE of one resource of kind k, if the request's
// If-Match holds.
func (a *API) deleteOne(k *kind) handler {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		origin, wo, err := writeTarget(r, p)
		if err != nil {
			return err
		}
		if k.zone && !p.Admin() {
			return forbidden("deleting a zone takes the admin scope")
		}
		res, err := a.b.Change(r.Context(), origin, func(cur *zones.Zone) (*zones.Zone, error) {
			if cur == nil {
				return nil, notFound("no zone %s", origin)
			}
			before, err := k.find(cur, r)
			if err != nil {
				return nil, err
			}
			if before == nil {
				return nil, notFound("no %s %s", k.name, strings.TrimPrefix(r.URL.Path, Prefix))
			}
			if prob := preconditions(r, before); prob != nil {
				return nil, prob
			}
			if !k.remove(cur, r) {
				return nil, nil
			}
			forgetLines(cur)
			if prob := newLines().validate(cur); prob != nil {
				return nil, prob
			}
			return cur, nil
		}, wo)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, "", result(res, wo, ""))
		return nil
	}
}

func (a *API) listZones(w http.ResponseWriter, r *http.Request, p Principal) error {
	all, err := a.b.Zones(r.Context())
	if err != nil {
		return err
	}
	out := []ZoneSummary{}
	for _, z := range all {
		if p.CanRead(z.Name) {
			out = append(out, z)
		}
	}
	writeJSON(w, http.StatusOK, "", out)
	return nil
}

// list answers GET of a zone's collection: what of reads from the zone.
func (a *API) list(of func(z *zones.Zone, r *http.Request) (any, error)) handler {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		z, err := a.readZone(r, p)
		if err != nil {
			return err
		}
		v, err := of(z, r)
		if err != nil {
			return err
		}
		return getAnswer(w, r, v)
	}
}

func (a *API) listRRsets(w http.ResponseWriter, r *http.Request, p Principal) error {
	return a.list(func(z *zones.Zone, _ *http.Request) (any, error) { return rrsetsOf(z), nil })(w, r, p)
}

func (a *API) listDatacenters(w http.ResponseWriter, r *http.Request, p Principal) error {
	return a.list(func(z *zones.Zone, _ *http.Request) (any, error) { return ZoneOf(z).Datacenters, nil })(w, r, p)
}

func (a *API) listPools(w http.ResponseWriter, r *http.Request, p Principal) error {
	return a.list(func(z *zones.Zone, _ *http.Request) (any, error) { return ZoneOf(z).Pools, nil })(w, r, p)
}

func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request, p Principal) error {
	return a.list(func(z *zones.Zone, r *http.Request) (any, error) {
		v, err := poolKind.find(z, r)
		if err != nil || v == nil {
			return nil, cmpErr(err, notFound("no pool %s in zone %s", r.PathValue("pool"), z.Origin))
		}
		return v.(Pool).Endpoints, nil
	})(w, r, p)
}

func cmpErr(err error, otherwise *Problem) error {
	if err != nil {
		return err
	}
	return otherwise
}

// poolStatus answers a pool's endpoints with their admin state and
// health, as the store has them now. It has no ETag: health is not
// written through the API.
func (a *API) poolStatus(w http.ResponseWriter, r *http.Request, p Principal) error {
	z, err := a.readZone(r, p)
	if err != nil {
		return err
	}
	i, prob := poolIndex(z, r)
	if prob != nil {
		return prob
	}
	if i < 0 {
		return notFound("no pool %s in zone %s", r.PathValue("pool"), z.Origin)
	}
	pool := &z.Pools[i]
	out := PoolStatus{Name: pool.Name, Endpoints: []EndpointStatus{}}
	for j := range pool.Endpoints {
		e := &pool.Endpoints[j]
		out.Endpoints = append(out.Endpoints, EndpointStatus{Address: e.Addr.String(), Datacenter: e.Datacenter,
			Admin: e.Admin.String(), Health: e.Health.String(), Eligible: pool.Eligible(e)})
	}
	slices.SortFunc(out.Endpoints, func(a, b EndpointStatus) int {
		return netip.MustParseAddr(a.Address).Compare(netip.MustParseAddr(b.Address))
	})
	writeJSON(w, http.StatusOK, "", out)
	return nil
}

// AdminRequest sets an endpoint's admin state.
type AdminRequest struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// AdminResult answers it.
type AdminResult struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// setAdmin drains, disables or enables an endpoint, as meridianctl does,
// with a reason for the audit log. It needs no If-Match: it sets one
// value, and says which it replaced. It takes neither force nor dry_run:
// no guard rail stands in its way, and it is undone by setting the old
// state again.
func (a *API) setAdmin(w http.ResponseWriter, r *http.Request, p Principal) error {
	origin, err := writeZone(r, p)
	if err != nil {
		return err
	}
	var req AdminRequest
	if prob := a.decodeBody(w, r, &req); prob != nil {
		return prob
	}
	state, err := zones.ParseAdminState(req.State)
	if err != nil {
		return invalidField("state", "%v", err)
	}
	if strings.TrimSpace(req.Reason) == "" {
		return invalidField("reason", "say why, for the audit log")
	}
	pool, ok := ownerName(r.PathValue("pool"), origin)
	if !ok {
		return invalidField("pool", "%q is not a name in zone %s", r.PathValue("pool"), origin)
	}
	addr, err := netip.ParseAddr(r.PathValue("address"))
	if err != nil || addr.Zone() != "" {
		return invalidField("address", "%q is not an IP address", r.PathValue("address"))
	}
	old, err := a.b.SetAdmin(r.Context(), origin, pool, addr.Unmap(), state, req.Reason, p.Name)
	if errors.Is(err, ErrNotFound) {
		return notFound("no endpoint %s in pool %s of zone %s", addr, pool, origin)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "", AdminResult{Old: old.String(), New: state.String()})
	return nil
}

func (a *API) listCheckers(w http.ResponseWriter, r *http.Request, p Principal) error {
	if !p.ReadsAll() {
		return forbidden("the checkers take the read or admin scope")
	}
	cs, err := a.b.Checkers(r.Context())
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []Checker{}
	}
	writeJSON(w, http.StatusOK, "", cs)
	return nil
}

// MaxAuditLimit bounds the entries of one audit answer.
const MaxAuditLimit = 1000

func (a *API) audit(w http.ResponseWriter, r *http.Request, p Principal) error {
	q := r.URL.Query()
	aq := AuditQuery{Limit: 100}
	if z := q.Get("zone"); z != "" {
		aq.Zone = zones.CanonicalName(z)
	}
	if !p.ReadsAll() && (aq.Zone == "" || !p.CanRead(aq.Zone)) {
		return forbidden("the whole audit log takes the read or admin scope; give zone= of a zone this token may read")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAuditLimit {
			return invalidField("limit", "want 1 to %d, got %q", MaxAuditLimit, v)
		}
		aq.Limit = n
	}
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return invalidField("before", "want an RFC 3339 time, got %q", v)
		}
		aq.Before = t
	}
	es, err := a.b.Audit(r.Context(), aq)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if es == nil {
		es = []AuditEntry{}
	}
	writeJSON(w, http.StatusOK, "", es)
	return nil
}
