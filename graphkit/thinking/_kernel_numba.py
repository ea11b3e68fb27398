"""numba kernels of graphkit.thinking.kernel (imported only when the ``fast`` extra is installed).

Module-level functions so that numba caches their machine code on disk (``cache=True``): a
worker process loads it instead of compiling again.

Work arrays (one set per finder): ``dist_x[v]`` is v's level on side x or -1; ``visited_x`` lists
the side's nodes level after level, level i being ``visited_x[level_x[i]:level_x[i + 1]]``. The
target side is kept across the evidence concepts of one target (``t_depth[0]``: its deepest
built level) and cleared at the end of ``target_pairs``; the evidence side after every pair.
"""

import numba


@numba.njit(cache=True, nogil=True)
def grow(lo, hi, visited, dist, depth, ok, indptr, nbr):
    """Append to ``visited`` every unseen node one allowed step from visited[lo:hi]; the new end.

    ``ok[entry]``: the CSR entry is a step this side may take (allowed edge, right direction).
    """
    end = hi
    for k in range(lo, hi):
        u = visited[k]
        for entry in range(indptr[u], indptr[u + 1]):
            if ok[entry]:
                v = nbr[entry]
                if dist[v] < 0:
                    dist[v] = depth
                    visited[end] = v
                    end += 1
    return end


@numba.njit(cache=True, nogil=True)
def target_pairs(
    t, sources, ok_s, ok_t, max_hops, max_expanded, limit,
    indptr, nbr, entry_edge, degree_s, degree_t,
    dist_s, dist_t, mark, visited_s, visited_t, level_s, level_t, t_depth,
    out_status, out_length, out_expanded, out_count, out_edges, out_nodes, cursor, stack,
):
    """Every evidence concept in ``sources`` against target ``t``; results in the out_* rows."""
    dist_t[t] = 0
    visited_t[0] = t
    level_t[0] = 0
    level_t[1] = 1
    t_depth[0] = 0
    for i in range(sources.size):
        status, length, expanded, n_paths = pair(
            sources[i], ok_s, ok_t, max_hops, max_expanded, limit,
            indptr, nbr, entry_edge, degree_s, degree_t,
            dist_s, dist_t, mark, visited_s, visited_t, level_s, level_t, t_depth,
            out_edges[i], out_nodes[i], cursor, stack,
        )
        out_status[i] = status
        out_length[i] = length
        out_expanded[i] = expanded
        out_count[i] = n_paths
    for k in range(level_t[t_depth[0] + 1]):
        dist_t[visited_t[k]] = -1


@numba.njit(cache=True, nogil=True)
def pair(
    s, ok_s, ok_t, max_hops, max_expanded, limit,
    indptr, nbr, entry_edge, degree_s, degree_t,
    dist_s, dist_t, mark, visited_s, visited_t, level_s, level_t, t_depth,
    out_edges, out_nodes, cursor, stack,
):
    """One evidence concept against the started target: (status, length, expanded, paths written).

    Status 0 found, 1 no path, 2 max hops, 3 budget; paths in out_nodes/out_edges rows.
    """
    dist_s[s] = 0
    visited_s[0] = s
    level_s[0] = 0
    level_s[1] = 1
    a = 0
    b = 0
    expanded = 0
    status = -1
    n_paths = 0
    while True:
        s_lo, s_hi = level_s[a], level_s[a + 1]
        t_lo, t_hi = level_t[b], level_t[b + 1]
        if s_hi == s_lo or t_hi == t_lo:
            status = 1
            break
        can_s = a < max_hops
        can_t = b < max_hops
        if not (can_s or can_t):
            status = 2
            break
        grow_s = can_s
        if can_s and can_t:
            work_s = 0
            for k in range(s_lo, s_hi):
                work_s += degree_s[visited_s[k]]
            work_t = 0
            for k in range(t_lo, t_hi):
                work_t += degree_t[visited_t[k]]
            grow_s = work_s <= work_t
        size = (s_hi - s_lo) if grow_s else (t_hi - t_lo)
        if expanded + size > max_expanded:
            status = 3
            break
        expanded += size
        met = False
        if grow_s:
            a += 1
            end = grow(s_lo, s_hi, visited_s, dist_s, a, ok_s, indptr, nbr)
            level_s[a + 1] = end
            for k in range(s_hi, end):
                if dist_t[visited_s[k]] == b:
                    met = True
                    break
        else:
            b += 1
            if b > t_depth[0]:  # not built for an earlier evidence concept of this target
                level_t[b + 1] = grow(t_lo, t_hi, visited_t, dist_t, b, ok_t, indptr, nbr)
                t_depth[0] = b
            for k in range(level_t[b], level_t[b + 1]):
                if dist_s[visited_t[k]] >= 0:
                    met = True
                    break
        if met:
            status = 0
            break

    if status == 0:
        total = a + b
        # the evidence side's nodes on a shortest path: the meeting layer, then back level by level
        for k in range(level_s[a], level_s[a + 1]):
            if dist_t[visited_s[k]] == b:
                mark[visited_s[k]] = 1
        for depth in range(a - 1, -1, -1):
            for k in range(level_s[depth], level_s[depth + 1]):
                u = visited_s[k]
                for entry in range(indptr[u], indptr[u + 1]):
                    if ok_s[entry]:
                        v = nbr[entry]
                        if mark[v] == 1 and dist_s[v] == depth + 1:
                            mark[u] = 1
                            break
        # depth-first in edge order: before the meeting layer, to a marked node one level further
        # from the evidence; from it on, to a node one step nearer the target
        stack[0] = s
        cursor[0] = indptr[s]
        depth = 0
        while depth >= 0 and n_paths < limit:
            u = stack[depth]
            if depth == total:
                for p in range(total + 1):
                    out_nodes[n_paths, p] = stack[p]
                for p in range(total):
                    out_edges[n_paths, p] = out_edges[limit, p]
                n_paths += 1
                depth -= 1
                continue
            advanced = False
            entry = cursor[depth]
            while entry < indptr[u + 1]:
                ok = ok_s[entry]
                if ok:
                    v = nbr[entry]
                    if depth < a:
                        ok = mark[v] == 1 and dist_s[v] == depth + 1
                    else:
                        ok = dist_t[v] >= 0 and dist_t[v] == total - depth - 1
                entry += 1
                if ok:
                    cursor[depth] = entry
                    out_edges[limit, depth] = entry_edge[entry - 1]
                    depth += 1
                    stack[depth] = nbr[entry - 1]
                    cursor[depth] = indptr[nbr[entry - 1]]
                    advanced = True
                    break
            if not advanced:
                depth -= 1
        for depth in range(a + 1):
            for k in range(level_s[depth], level_s[depth + 1]):
                mark[visited_s[k]] = 0
    for k in range(level_s[a + 1]):
        dist_s[visited_s[k]] = -1
    return status, a + b, expanded, n_paths
