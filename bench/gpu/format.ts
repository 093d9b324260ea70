/** Number formats shared by the progress log and the report, so both show a value the same way. */

/** Fixed digits; 'n/a' for a value that was not measured or is not finite. */
export const formatFixed = (value: number | undefined, digits = 2) => (value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits));

/** For differences that span many orders of magnitude: 0 stays '0', others get three significant digits. */
export const formatScientific = (value: number) => (value === 0 ? '0' : Number.isFinite(value) ? value.toExponential(2) : String(value));
