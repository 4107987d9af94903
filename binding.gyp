# node-gyp build of the CPU addon: the source-build fallback when no prebuilt binary fits and
# cmake-js is not installed (scripts/install/build-native.js picks it; `npx node-gyp rebuild` runs it by
# hand). libtorch's headers and libraries come from scripts/install/libtorch.js (Torch_DIR, LD_LIBRARY_PATH,
# the system directories, python3's PyTorch; DIFFUSION_SEARCH_LIBTORCH overrides). CUDA kernels
# need the full build: CMakeLists.txt through cmake-js (npm run build:native).
{
  "variables": {
    "torch_include": "<!(node scripts/install/libtorch.js include)",
    "torch_libdir": "<!(node scripts/install/libtorch.js libdir)",
    "torch_abi": "<!(node scripts/install/libtorch.js abi)",
    "torch_version": "<!(node scripts/install/libtorch.js version)"
  },
  "targets": [
    {
      "target_name": "ds_kernels",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('fs').readdirSync('native/kernels').filter(f => f.endsWith('.cpp')).map(f => 'native/kernels/' + f).join(' ')\")"],
      "include_dirs": ["native/kernels"],
      "defines": ["_GLIBCXX_USE_CXX11_ABI=<(torch_abi)"],
      "cflags": ["-fPIC", "-fopenmp", "-O3", "-Wall", "-Wextra", "-ffp-contract=off", "-fno-math-errno"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"]
    },
    {
      "target_name": "ds_native",
      "dependencies": ["ds_kernels"],
      "sources": ["<!@(node -p \"require('fs').readdirSync('native/addon').filter(f => f.endsWith('.cpp')).map(f => 'native/addon/' + f).join(' ')\")"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/kernels",
        "<!@(node scripts/install/libtorch.js include)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GLIBCXX_USE_CXX11_ABI=<(torch_abi)",
        "DS_TORCH_VERSION=\"<(torch_version)\"",
        "DS_BUILT_WITH=\"node-gyp\"",
        "DS_CUDA_OFF_REASON=\"built by node-gyp (binding.gyp builds the CPU addon only; CUDA needs the cmake-js build: npm run build:native)\""
      ],
      "cflags": ["-fopenmp", "-O3", "-Wall", "-Wno-unused-parameter"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "libraries": [
        "<!@(node scripts/install/libtorch.js libs)",
        "-fopenmp",
        "-Wl,-rpath,<(torch_libdir)",
        "-Wl,-z,nodelete"
      ]
    }
  ]
}
