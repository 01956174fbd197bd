package dnsproxy

// buildChain assembles the query path. The order is the whole policy:
// names of the mesh are answered from the name table, everything else from
// the cache, and what the cache lacks from the upstream servers.
func (p *Proxy) buildChain() Next {
	return Chain(p.mesh, p.cache, p.fwd)
}
