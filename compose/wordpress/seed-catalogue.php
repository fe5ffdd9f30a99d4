<?php
/**
 * Seed or update the Garderobe catalogue from a JSON file:
 *
 *   wp eval-file seed-catalogue.php /tap/wordpress/catalogue.json
 *
 * Idempotent: categories are matched by name, products by SKU; a second run only updates
 * names, prices and categories to what the file says.
 *
 * @package tap
 */

if ( ! function_exists( 'wc_get_product_id_by_sku' ) ) {
	WP_CLI::error( 'WooCommerce is not active.' );
}

$tap_file = isset( $args[0] ) ? $args[0] : '';
$tap_data = json_decode( (string) file_get_contents( $tap_file ), true );
if ( ! is_array( $tap_data ) || empty( $tap_data['products'] ) ) {
	WP_CLI::error( "No products in '$tap_file'." );
}

$tap_created = 0;
$tap_updated = 0;
foreach ( $tap_data['products'] as $tap_item ) {
	foreach ( array( 'sku', 'name', 'category', 'price' ) as $tap_key ) {
		if ( ! isset( $tap_item[ $tap_key ] ) || '' === (string) $tap_item[ $tap_key ] ) {
			WP_CLI::error( "Catalogue entry without '$tap_key': " . wp_json_encode( $tap_item ) );
		}
	}

	$tap_term = term_exists( $tap_item['category'], 'product_cat' );
	if ( ! $tap_term ) {
		$tap_term = wp_insert_term( $tap_item['category'], 'product_cat' );
		if ( is_wp_error( $tap_term ) ) {
			WP_CLI::error( $tap_term->get_error_message() );
		}
	}
	$tap_term_id = (int) ( is_array( $tap_term ) ? $tap_term['term_id'] : $tap_term );

	$tap_id      = wc_get_product_id_by_sku( $tap_item['sku'] );
	$tap_product = $tap_id ? wc_get_product( $tap_id ) : new WC_Product_Simple();
	if ( ! $tap_id ) {
		$tap_product->set_sku( $tap_item['sku'] );
	}
	$tap_product->set_name( $tap_item['name'] );
	$tap_product->set_regular_price( (string) $tap_item['price'] );
	$tap_product->set_category_ids( array( $tap_term_id ) );
	$tap_product->set_status( 'publish' );
	$tap_product->set_catalog_visibility( 'visible' );
	$tap_product->set_virtual( false );
	$tap_product->set_manage_stock( false );
	$tap_product->set_stock_status( 'instock' );
	if ( ! empty( $tap_item['description'] ) ) {
		$tap_product->set_short_description( $tap_item['description'] );
	}
	$tap_product->save();

	if ( $tap_id ) {
		++$tap_updated;
	} else {
		++$tap_created;
	}
}

WP_CLI::success( sprintf( 'Garderobe catalogue: %d products created, %d updated.', $tap_created, $tap_updated ) );
