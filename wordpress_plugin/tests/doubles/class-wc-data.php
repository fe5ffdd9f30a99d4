<?php
/**
 * Double of WC_Data: meta data and save(). get_meta() returns '' for a missing key, as
 * WooCommerce does for a single value.
 *
 * @package TAP_Order_Logger\Tests
 */

abstract class WC_Data {

	/** @var int */
	protected $id = 0;

	/** @var array<string, mixed> */
	protected $meta = array();

	/** @return int */
	public function get_id() {
		return $this->id;
	}

	/**
	 * @param string $key     Meta key.
	 * @param bool   $single  Single value.
	 * @param string $context view or edit.
	 * @return mixed
	 */
	public function get_meta( $key = '', $single = true, $context = 'view' ) {
		return array_key_exists( $key, $this->meta ) ? $this->meta[ $key ] : ( $single ? '' : array() );
	}

	/**
	 * @param string $key   Meta key.
	 * @param mixed  $value Value.
	 */
	public function update_meta_data( $key, $value ) {
		$this->meta[ $key ] = $value;
	}

	/** @param string $key Meta key. */
	public function delete_meta_data( $key ) {
		unset( $this->meta[ $key ] );
	}

	/** @return int The id. */
	abstract public function save();
}
