/**
 * Whether the Vulkan loader (libvulkan.so.1) is on the dynamic loader's path. On Linux, WebGPU
 * (Dawn) needs it; without it Dawn finds no adapter and prints a warning at every attempt.
 */
import { parseLdconfig, runLdconfig } from './ldconfig';

/** True or false from `ldconfig -p`; undefined when the cache cannot be read. */
export function hasVulkanLoader(arch: string = process.arch): Promise<boolean | undefined> {
  return runLdconfig().then(
    (out) => parseLdconfig(out, arch).has('libvulkan.so.1'),
    () => undefined,
  );
}
