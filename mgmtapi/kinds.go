package mgmtapi

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// kind is one kind of resource of a zone, for the generic handlers of
// getOne, putOne and deleteOne.
type kind struct {
	name string
	zone bool // the zone itself: created and deleted by admins only
	// find returns the representation of the resource that r names in
	// z, or nil when z holds none; a path that names nothing valid is a
	// *Problem.
	find func(z *zones.Zone, r *http.Request) (any, error)
	// decode reads a PUT's body and checks it names the resource r does.
	decode func(a *API, w http.ResponseWriter, r *http.Request) (any, *Problem)
	// put puts v, what decode read, in z in place of what find finds,
	// converting it through l.
	put func(z *zones.Zone, r *http.Request, v any, l *lines) *Problem
	// remove deletes the resource from z, which holds it; for the zone,
	// it returns false: the zone goes.
	remove func(z *zones.Zone, r *http.Request) bool
}

// nameParam returns the path's owner name {param} of zone z.
func nameParam(r *http.Request, param string, z *zones.Zone) (string, *Problem) {
	name, ok := ownerName(r.PathValue(param), z.Origin)
	if !ok {
		return "", invalidField(param, "%q is not a name in zone %s", r.PathValue(param), z.Origin)
	}
	return name, nil
}

// sameName checks that a name given in a body, if any, is the path's.
func sameName(field, given, want, origin string) *Problem {
	if given == "" {
		return nil
	}
	if n, ok := ownerName(given, origin); !ok || n != want {
		return invalidField(field, "%q is not %s, the name in the path", given, want)
	}
	return nil
}

func decodeAs[T any](a *API, w http.ResponseWriter, r *http.Request) (any, *Problem) {
	var v T
	if p := a.decodeBody(w, r, &v); p != nil {
		return nil, p
	}
	return v, nil
}

var zoneKind = &kind{
	name: "zone",
	zone: true,
	find: func(z *zones.Zone, r *http.Request) (any, error) {
		if z == nil {
			return nil, nil
		}
		return ZoneOf(z), nil
	},
	decode: decodeAs[Zone],
	put: func(z *zones.Zone, r *http.Request, v any, l *lines) *Problem {
		in := v.(Zone)
		if p := sameName("name", in.Name, z.Origin, z.Origin); p != nil {
			return p
		}
		e := &errs{}
		next := zones.Zone{Origin: z.Origin, Source: z.Source, Keys: z.Keys}
		for i, s := range in.RRsets {
			next.Records = append(next.Records, l.records(e, "rrsets["+itoa(i)+"]", z.Origin, s)...)
		}
		for i, d := range in.Datacenters {
			next.Datacenters = append(next.Datacenters, l.datacenter(e, "datacenters["+itoa(i)+"]", d))
		}
		for i, p := range in.Pools {
			next.Pools = append(next.Pools, l.pool(e, "pools["+itoa(i)+"]", z.Origin, p))
		}
		*z = next
		return e.problem()
	},
	remove: func(*zones.Zone, *http.Request) bool { return false },
}

// rrsetPath returns the name and type of an RRset's path.
func rrsetPath(z *zones.Zone, r *http.Request) (string, uint16, *Problem) {
	name, p := nameParam(r, "name", z)
	if p != nil {
		return "", 0, p
	}
	t, ok := dns.StringToType[strings.ToUpper(r.PathValue("type"))]
	if !ok || t == dns.TypeNone {
		return "", 0, invalidField("type", "unknown type %q", r.PathValue("type"))
	}
	return name, t, nil
}

var rrsetKind = &kind{
	name: "RRset",
	find: func(z *zones.Zone, r *http.Request) (any, error) {
		name, t, p := rrsetPath(z, r)
		if p != nil {
			return nil, p
		}
		for _, s := range rrsetsOf(z) {
			if s.Name == name && s.Type == dns.Type(t).String() {
				return s, nil
			}
		}
		return nil, nil
	},
	decode: decodeAs[RRset],
	put: func(z *zones.Zone, r *http.Request, v any, l *lines) *Problem {
		name, t, p := rrsetPath(z, r)
		if p != nil {
			return p
		}
		in := v.(RRset)
		if p := sameName("name", in.Name, name, z.Origin); p != nil {
			return p
		}
		if in.Type != "" && !strings.EqualFold(in.Type, dns.Type(t).String()) {
			return invalidField("type", "%q is not %s, the type in the path", in.Type, dns.Type(t))
		}
		in.Name, in.Type = name, dns.Type(t).String()
		e := &errs{}
		recs := l.records(e, "", z.Origin, in)
		if p := e.problem(); p != nil {
			return p
		}
		removeRRset(z, name, t)
		z.Records = append(z.Records, recs...)
		return nil
	},
	remove: func(z *zones.Zone, r *http.Request) bool {
		name, t, _ := rrsetPath(z, r)
		removeRRset(z, name, t)
		return true
	},
}

func removeRRset(z *zones.Zone, name string, t uint16) {
	z.Records = slices.DeleteFunc(z.Records, func(rec zones.Record) bool {
		h := rec.RR.Header()
		return h.Rrtype == t && zones.CanonicalName(h.Name) == name
	})
}

var datacenterKind = &kind{
	name: "datacenter",
	find: func(z *zones.Zone, r *http.Request) (any, error) {
		name := r.PathValue("datacenter")
		for _, dc := range z.Datacenters {
			if dc.Name == name {
				return datacenterOf(dc), nil
			}
		}
		return nil, nil
	},
	decode: decodeAs[Datacenter],
	put: func(z *zones.Zone, r *http.Request, v any, l *lines) *Problem {
		in := v.(Datacenter)
		name := r.PathValue("datacenter")
		if in.Name != "" && in.Name != name {
			return invalidField("name", "%q is not %s, the name in the path", in.Name, name)
		}
		in.Name = name
		e := &errs{}
		dc := l.datacenter(e, "", in)
		if p := e.problem(); p != nil {
			return p
		}
		if i := slices.IndexFunc(z.Datacenters, func(d zones.Datacenter) bool { return d.Name == name }); i >= 0 {
			z.Datacenters[i] = dc
		} else {
			z.Datacenters = append(z.Datacenters, dc)
		}
		return nil
	},
	remove: func(z *zones.Zone, r *http.Request) bool {
		name := r.PathValue("datacenter")
		z.Datacenters = slices.DeleteFunc(z.Datacenters, func(d zones.Datacenter) bool { return d.Name == name })
		return true
	},
}

// poolIndex returns the index in z of the pool of r's path, or -1.
func poolIndex(z *zones.Zone, r *http.Request) (int, *Problem) {
	name, p := nameParam(r, "pool", z)
	if p != nil {
		return -1, p
	}
	return slices.IndexFunc(z.Pools, func(p zones.Pool) bool { return zones.CanonicalName(p.Name) == name }), nil
}

var poolKind = &kind{
	name: "pool",
	find: func(z *zones.Zone, r *http.Request) (any, error) {
		i, p := poolIndex(z, r)
		if p != nil {
			return nil, p
		}
		if i < 0 {
			return nil, nil
		}
		return poolOf(&z.Pools[i]), nil
	},
	decode: decodeAs[Pool],
	put: func(z *zones.Zone, r *http.Request, v any, l *lines) *Problem {
		i, p := poolIndex(z, r)
		if p != nil {
			return p
		}
		name, _ := nameParam(r, "pool", z)
		in := v.(Pool)
		if p := sameName("name", in.Name, name, z.Origin); p != nil {
			return p
		}
		in.Name = name
		e := &errs{}
		pool := l.pool(e, "", z.Origin, in)
		if p := e.problem(); p != nil {
			return p
		}
		if i >= 0 {
			z.Pools[i] = pool
		} else {
			z.Pools = append(z.Pools, pool)
		}
		return nil
	},
	remove: func(z *zones.Zone, r *http.Request) bool {
		i, _ := poolIndex(z, r)
		z.Pools = slices.Delete(z.Pools, i, i+1)
		return true
	},
}

// endpointIndex returns the pool of r's path (an error when z holds
// none) and the index of the endpoint of r's path in it, or -1.
func endpointIndex(z *zones.Zone, r *http.Request) (*zones.Pool, netip.Addr, int, error) {
	i, p := poolIndex(z, r)
	if p != nil {
		return nil, netip.Addr{}, -1, p
	}
	if i < 0 {
		return nil, netip.Addr{}, -1, notFound("no pool %s in zone %s", r.PathValue("pool"), z.Origin)
	}
	addr, err := netip.ParseAddr(r.PathValue("address"))
	if err != nil || addr.Zone() != "" {
		return nil, netip.Addr{}, -1, invalidField("address", "%q is not an IP address", r.PathValue("address"))
	}
	addr = addr.Unmap()
	pool := &z.Pools[i]
	return pool, addr, slices.IndexFunc(pool.Endpoints, func(e zones.Endpoint) bool { return e.Addr == addr }), nil
}

var endpointKind = &kind{
	name: "endpoint",
	find: func(z *zones.Zone, r *http.Request) (any, error) {
		pool, _, i, err := endpointIndex(z, r)
		if err != nil || i < 0 {
			return nil, err
		}
		return endpointOf(pool.Endpoints[i]), nil
	},
	decode: decodeAs[Endpoint],
	put: func(z *zones.Zone, r *http.Request, v any, l *lines) *Problem {
		pool, addr, i, err := endpointIndex(z, r)
		if err != nil {
			p, _ := asProblem(err)
			return p
		}
		in := v.(Endpoint)
		if in.Address != "" {
			if a, err := netip.ParseAddr(in.Address); err != nil || a.Unmap() != addr {
				return invalidField("address", "%q is not %s, the address in the path", in.Address, addr)
			}
		}
		in.Address = addr.String()
		e := &errs{}
		ep := l.endpoint(e, "", in)
		if p := e.problem(); p != nil {
			return p
		}
		if i >= 0 {
			pool.Endpoints[i] = ep
		} else {
			pool.Endpoints = append(pool.Endpoints, ep)
		}
		return nil
	},
	remove: func(z *zones.Zone, r *http.Request) bool {
		pool, _, i, _ := endpointIndex(z, r)
		pool.Endpoints = slices.Delete(pool.Endpoints, i, i+1)
		return true
	},
}
