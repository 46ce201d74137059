import { expect, test } from '@playwright/test';

test('without WebGPU the page explains what that means and what to do', async ({ page }) => {
  await page.goto('/');
  const unavailable = page.getByTestId('gpu-unavailable');
  await expect(unavailable).toBeVisible({ timeout: 30_000 });
  await expect(unavailable).toContainText('No WebGPU here');
  // Either WebGPU is missing (advice names the browsers that have it) or no adapter is usable
  // (advice says how to turn hardware acceleration on).
  await expect(unavailable).toContainText(/Chrome|hardware acceleration/);
  // The engine itself still started: the worker answered.
  await expect(page.getByTestId('engine-status')).toHaveAttribute('data-engine-version', /\d+\.\d+\.\d+/);
  await page.screenshot({ path: 'test-results/screenshots/no-webgpu.png', fullPage: true });
});
