"""Developer tooling for this repository (make up, make demo): not part of the product
package and not shipped in the remediator image."""
