// The 1-D launch grid of the elementwise-style kernels: WG invocations per workgroup (template __WG__); past
// 65535 workgroups the host wraps the grid into y (groups1d in the WebGPU backend), so ids are rebuilt from both.
const WG: u32 = __WG__u;

// Index of the workgroup in the flattened grid (uniform across the workgroup).
fn workgroupIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}

// Index of the invocation in the flattened grid.
fn linearId(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return workgroupIndex(wid, nwg) * WG + lid;
}
