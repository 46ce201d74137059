/**
 * Finding a Vulkan driver for Dawn under Node. On a machine with a GPU driver nothing is changed.
 * On a machine without one (CI, this project's dev machines) Debian's Chromium ships SwiftShader,
 * a software Vulkan driver, together with a Vulkan loader: pointing Dawn at them gives a working
 * (slow) WebGPU adapter. The loader is found through LD_LIBRARY_PATH, which the dynamic linker only
 * reads at process start, so the environment must be set before Node starts: the CLI re-executes
 * itself, and the test config sets it before Vitest forks its workers.
 */
import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { delimiter, join } from 'node:path';

/** Where distributions put Chromium's bundled SwiftShader. */
const SWIFTSHADER_DIRS = ['/usr/lib/chromium', '/usr/lib64/chromium', '/usr/lib/chromium-browser', '/opt/google/chrome'];

const SYSTEM_ICD_DIRS = [
  '/usr/share/vulkan/icd.d',
  '/etc/vulkan/icd.d',
  '/usr/local/share/vulkan/icd.d',
  '/usr/local/nvidia/share/vulkan/icd.d',
];

const SYSTEM_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib64'];

/** Set in the environment once the software driver is chosen; also tells the engine to ask for the fallback adapter. */
export const SOFTWARE_GPU_ENV = 'HEARTH_SOFTWARE_GPU';

export interface SoftwareVulkan {
  /** Directory holding libvulkan.so.1 and libvk_swiftshader.so. */
  dir: string;
  icdJson: string;
}

export function findSwiftShader(): SoftwareVulkan | null {
  for (const dir of SWIFTSHADER_DIRS) {
    const icdJson = join(dir, 'vk_swiftshader_icd.json');
    if (existsSync(icdJson) && existsSync(join(dir, 'libvulkan.so.1'))) return { dir, icdJson };
  }
  return null;
}

function hasVulkanLoader(env: NodeJS.ProcessEnv): boolean {
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean), ...SYSTEM_LIB_DIRS];
  if (dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')))) return true;
  try {
    return execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('libvulkan.so.1');
  } catch {
    return false;
  }
}

function hasVulkanDriver(env: NodeJS.ProcessEnv): boolean {
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES) return true;
  return SYSTEM_ICD_DIRS.some((dir) => {
    try {
      return readdirSync(dir).some((name) => name.endsWith('.json'));
    } catch {
      return false;
    }
  });
}

/**
 * The environment changes needed for Dawn to find a Vulkan driver, or null when none are needed
 * (a real driver is installed, we already applied them, or there is no software driver to use).
 * `HEARTH_SOFTWARE_GPU=1` forces the software driver even where a real one exists.
 */
export function softwareVulkanEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> | null {
  if (process.platform !== 'linux') return null;
  const forced = env[SOFTWARE_GPU_ENV] === '1';
  const applied = env[SOFTWARE_GPU_ENV] === 'applied';
  if (applied) return null;
  if (!forced && hasVulkanLoader(env) && hasVulkanDriver(env)) return null;
  const swiftshader = findSwiftShader();
  if (!swiftshader) return null;
  const ldPath = [swiftshader.dir, ...(env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean)].join(delimiter);
  return { LD_LIBRARY_PATH: ldPath, VK_ICD_FILENAMES: swiftshader.icdJson, [SOFTWARE_GPU_ENV]: 'applied' };
}

/** True when this process runs on the software driver chosen by `softwareVulkanEnv`. */
export function usingSoftwareVulkan(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[SOFTWARE_GPU_ENV] === 'applied';
}
