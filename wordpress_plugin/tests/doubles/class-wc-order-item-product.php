<?php
/**
 * Doubles of WC_Order_Item and WC_Order_Item_Product. WooCommerce stores line amounts as
 * decimal strings ("20.00"), so get_total() / get_total_tax() return strings here too.
 *
 * @package TAP_Order_Logger\Tests
 */

class WC_Order_Item extends WC_Data {

	/** @var array */
	protected $props;

	public function __construct( array $props = array() ) {
		$this->props = $props;
		$this->id    = (int) ( $props['id'] ?? 0 );
	}

	/** @return string */
	public function get_name( $context = 'view' ) {
		return (string) ( $this->props['name'] ?? '' );
	}

	/** @return string */
	public function get_type() {
		return 'line_item';
	}

	public function save() {
		return $this->id;
	}
}

class WC_Order_Item_Product extends WC_Order_Item {

	/** @return int */
	public function get_product_id( $context = 'view' ) {
		return (int) ( $this->props['product_id'] ?? 0 );
	}

	/** @return int */
	public function get_variation_id( $context = 'view' ) {
		return (int) ( $this->props['variation_id'] ?? 0 );
	}

	/** @return int */
	public function get_quantity( $context = 'view' ) {
		return (int) ( $this->props['quantity'] ?? 1 );
	}

	/** @return string Line total after discounts, before tax. */
	public function get_total( $context = 'view' ) {
		return (string) ( $this->props['total'] ?? '0' );
	}

	/** @return string */
	public function get_subtotal( $context = 'view' ) {
		return (string) ( $this->props['subtotal'] ?? $this->get_total() );
	}

	/** @return string */
	public function get_total_tax( $context = 'view' ) {
		return (string) ( $this->props['total_tax'] ?? '0' );
	}

	/** @return WC_Product|false The variation when there is one, else the product. */
	public function get_product() {
		$id = $this->get_variation_id() ? $this->get_variation_id() : $this->get_product_id();
		return wc_get_product( $id );
	}
}
