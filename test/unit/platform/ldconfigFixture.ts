/** `ldconfig -p` output for the CUDA runtime tests of the platform check and the installer. */
import { CUDA_RUNTIME_LIBRARIES } from '../../../src/platform/cuda';

/** ldconfig -p output listing every runtime library (x86-64). */
export const ALL_LIBS_LDCONFIG = [
  `${CUDA_RUNTIME_LIBRARIES.length + 1} libs found in cache \`/etc/ld.so.cache'`,
  ...CUDA_RUNTIME_LIBRARIES.map((l) => `\t${l.soname} (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/${l.soname}`),
  '\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6',
].join('\n');

/** checkCudaRuntime options under which every library is found, without touching the machine. */
export const runtimeOk = { ldconfigOutput: ALL_LIBS_LDCONFIG, searchPaths: [], env: {} };
