import { describe, expect, it } from 'vitest';
import { SOFTWARE_GPU_ENV, findSwiftShader, softwareVulkanEnv } from './vulkan-env.ts';

describe('software Vulkan environment', () => {
  it('changes nothing once applied', () => {
    expect(softwareVulkanEnv({ [SOFTWARE_GPU_ENV]: 'applied' })).toBeNull();
  });

  it('points Dawn at SwiftShader when forced and Chromium is installed', () => {
    const swiftshader = findSwiftShader();
    const env = softwareVulkanEnv({ [SOFTWARE_GPU_ENV]: '1', LD_LIBRARY_PATH: '/opt/x' });
    if (!swiftshader) {
      expect(env).toBeNull();
      return;
    }
    expect(env).toEqual({
      LD_LIBRARY_PATH: `${swiftshader.dir}:/opt/x`,
      VK_ICD_FILENAMES: swiftshader.icdJson,
      [SOFTWARE_GPU_ENV]: 'applied',
    });
  });
});
