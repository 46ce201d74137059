import { expect, test } from '@playwright/test';

test.describe('app shell with WebGPU', () => {
  test('loads, the engine worker answers, and the adapter is shown', async ({ page }) => {
    const consoleErrors: string[] = [];
    page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));
    await page.goto('/#device');
    await expect(page).toHaveTitle('Hearth');

    const status = page.getByTestId('engine-status');
    await expect(status).toHaveAttribute('data-engine-version', /\d+\.\d+\.\d+/, { timeout: 30_000 });
    await expect(status).toContainText('web-worker');

    const report = page.getByTestId('gpu-report');
    await expect(report).toBeVisible();
    await expect(page.getByTestId('adapter-name')).not.toBeEmpty();
    await expect(page.getByTestId('features')).toContainText(/\S/);
    await expect(page.getByTestId('limits')).toContainText('Largest storage binding');
    await expect(page.getByTestId('kernel-paths')).toContainText(/f16|f32/);
    await expect(page.getByTestId('cpu-report')).toContainText('WebAssembly SIMD');
    await page.screenshot({ path: 'test-results/screenshots/capabilities.png', fullPage: true });
    expect(consoleErrors).toEqual([]);
  });
});
