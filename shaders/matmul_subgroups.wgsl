// Batched matmul for CPU rasterisers with subgroups (the 'subgroups' feature, subgroup size ≥ 8): the
// barrier-free matmul_direct4 work split (a workgroup of WX lanes shares TM = 8·R rows, each lane owns 4
// columns), but the rows of A are loaded once per subgroup — lane i reads rows i, 8 + i, … — and handed to
// every lane with subgroupBroadcast. On llvmpipe every storage load inside a loop is a per-lane scalar loop
// with bounds checks, so sharing A this way cuts the loads per 4 steps of k from TM + 4 vec4 to R + 4.
// Same contract as matmul.wgsl: out[b] = opA(a[b]) · opB(b[b]); conditions k % 4 == 0, strideA % 4 == 0,
// strideB % 4 == 0 and n % 4 == 0 unless TRANS_B. Template tokens: __WX__ __TM__ __R__ __TRANS_A__ __TRANS_B__.
enable subgroups;

//#include matmul_params.wgsl

const WX: u32 = __WX__u;
const TM: u32 = __TM__u;
const TRANS_A: bool = __TRANS_A__u == 1u;
const TRANS_B: bool = __TRANS_B__u == 1u;

//#include matmul_vec4_loads.wgsl

@compute @workgroup_size(WX)
fn matmul_subgroups(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                    @builtin(subgroup_invocation_id) sid: u32) {
//#include matmul_vec4_setup.wgsl
  // The rows this lane loads for the whole subgroup (clamped: edge rows are computed and dropped).
//#unroll r R
  let myRow_{r} = min(row0 + {r}u * 8u + sid % 8u, P.m - 1u);
//#end
//#unroll i TM
  var acc_{i} = vec4<f32>(0.0);
//#end
  let s = P.n / 4u;
  for (var p = 0u; p < P.k; p += 4u) {
//#unroll r R
    let mine_{r} = loadArow(baseA, myRow_{r}, p);
//#end
//#unroll i TM
    let a_{i} = subgroupBroadcast(mine_{i/8}, {i%8}u);
//#end
//#include matmul_vec4_steps.wgsl
  }
//#include matmul_vec4_store.wgsl
}
